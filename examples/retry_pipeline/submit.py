#!/usr/bin/python3
"""Submit PDF jobs to the retry pipeline's work exchange `pdf.work`.

    /usr/bin/python3 submit.py --count 6 --flaky-every 2 --broken-every 3

--flaky-every n: every n-th job fails its first --flaky-failures attempts, then works.
--broken-every n: every n-th job always fails, and ends up in the parking lot.
"""
import argparse
import json

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=6, help="number of jobs to submit")
parser.add_argument("--flaky-every", type=int, default=2)
parser.add_argument("--flaky-failures", type=int, default=1)
parser.add_argument("--broken-every", type=int, default=3)
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare_work(channel)
channel.confirm_delivery()

for job_id in range(1, args.count + 1):
    broken = args.broken_every > 0 and job_id % args.broken_every == 0
    flaky = not broken and args.flaky_every > 0 and job_id % args.flaky_every == 0
    job = {"job_id": job_id, "file": f"report-{job_id}.pdf", "broken": broken,
           "flaky_failures": args.flaky_failures if flaky else 0}
    channel.basic_publish(topology.WORK_EXCHANGE, topology.WORK_ROUTING_KEY, json.dumps(job),
                          pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                               message_id=f"job-{job_id}"),
                          mandatory=True)

print(f"submitted {args.count} jobs", flush=True)
connection.close()
