#!/usr/bin/python3
"""Submit PDF thumbnail jobs to the durable queue `pdf.jobs`.

    /usr/bin/python3 submit.py --count 20 --corrupt-every 5

Every --corrupt-every'th job points at a corrupt file: the worker can never render
it (a permanent failure) and rejects it instead of retrying.
"""
import argparse
import json

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=10, help="number of jobs to submit")
parser.add_argument("--corrupt-every", type=int, default=0, help="make every n-th job unrenderable (0: none)")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.queue_declare(queue="pdf.jobs", durable=True)
channel.confirm_delivery()  # basic_publish returns once the broker has the job

for job_id in range(1, args.count + 1):
    corrupt = args.corrupt_every > 0 and job_id % args.corrupt_every == 0
    job = {"job_id": job_id, "file": f"invoice-{job_id}.pdf", "pages": 1 + job_id % 4, "corrupt": corrupt}
    channel.basic_publish(exchange="", routing_key="pdf.jobs", body=json.dumps(job),
                          properties=pika.BasicProperties(content_type="application/json", delivery_mode=2))

print(f"submitted {args.count} jobs", flush=True)
connection.close()
