#!/usr/bin/python3
"""Show the jobs in `pdf.thumbnails.failed` and why they are there.

    /usr/bin/python3 show_failed.py

Leaves them in place (basic_get, then nack with requeue).
"""
import argparse
import json

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.queue_declare(queue=topology.FAILED_QUEUE, durable=True)
seen = []
while True:
    method, properties, body = channel.basic_get(topology.FAILED_QUEUE)
    if method is None:
        break
    seen.append(method.delivery_tag)
    job = json.loads(body)
    reason = (properties.headers or {}).get("x-last-death-reason")
    why = {"delivery_limit": "out of attempts", "rejected": "rejected as hopeless"}.get(reason, reason)
    print(f"job {job['job_id']} ({job['file']}): {why}")
if seen:
    channel.basic_nack(seen[-1], multiple=True, requeue=True)
print(f"{len(seen)} failed jobs")
connection.close()
