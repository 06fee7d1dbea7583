#!/usr/bin/python3
"""Send jobs to the durable work queue `jobs`.

    /usr/bin/python3 producer.py --count 20 --work-ms 500

The queue is durable and the messages persistent (delivery_mode=2): a broker that
stores messages on disk, as RabbitMQ does, keeps both across a restart (Warren keeps
messages in memory for now). Publisher confirms make the producer wait until the
broker has accepted each job: when this script says "sent", the job is the broker's
problem.
"""
import argparse
import json

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=10, help="number of jobs to send")
parser.add_argument("--work-ms", type=int, default=500, help="how long each job takes a worker")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()

# Workers declare the same queue; the arguments must match wherever it is declared.
channel.queue_declare(queue="jobs", durable=True)
channel.confirm_delivery()

for job_id in range(1, args.count + 1):
    # The default exchange ("") routes a message to the queue named by its routing key.
    channel.basic_publish(
        exchange="",
        routing_key="jobs",
        body=json.dumps({"job_id": job_id, "work_ms": args.work_ms}),
        properties=pika.BasicProperties(content_type="application/json",
                                        delivery_mode=2),  # 2: persistent
        mandatory=True,  # if no queue took it, basic_publish raises UnroutableError
    )

print(f"sent {args.count} jobs (confirmed by the broker)", flush=True)
connection.close()
