#!/usr/bin/python3
"""Declare the super stream `ad-clicks`: 6 stream partitions behind one hash exchange.

    /usr/bin/python3 topology.py [--partitions 6]

A super stream is an exchange of type x-consistent-hash marked x-super-stream, and stream
queues ad-clicks-0 .. ad-clicks-5 bound to it in order with weight "1". The exchange sends each
click to one partition by a hash of its routing key (the ad id), so one ad's clicks stay in
order. Clicks are kept for 7 days (x-max-age), whoever has read them: a stream is a log.
Plain AMQP declarations, so any client can do this; `tools/warrenctl add_super_stream
ad-clicks --partitions 6 --max-age 7D` does the same through the management API.
"""
import argparse

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--partitions", type=int, default=6)
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.exchange_declare("ad-clicks", "x-consistent-hash", durable=True, arguments={"x-super-stream": True})
for i in range(args.partitions):
    partition = f"ad-clicks-{i}"
    channel.queue_declare(partition, durable=True, arguments={"x-queue-type": "stream", "x-max-age": "7D"})
    # In partition order: the ring is the bindings in the order they were made.
    channel.queue_bind(partition, "ad-clicks", routing_key="1", arguments={"x-stream-partition-order": i})
print(f"super stream ad-clicks with {args.partitions} partitions", flush=True)
connection.close()
