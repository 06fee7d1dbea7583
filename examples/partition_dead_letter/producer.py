#!/usr/bin/python3
"""Publish order events to the super stream `order-events`, keyed by order id.

    /usr/bin/python3 producer.py --orders 6 --fail order-2:2
    /usr/bin/python3 producer.py --orders 2 --events delivered --first-seq 5

Events of different orders are interleaved; each order's events carry its sequence numbers
(--first-seq, --first-seq + 1, ...) and must be processed in that order. The order id is the
routing key, so an order's events all land in one partition, in order. --fail ORDER:SEQ marks
an event that the member cannot process until it is fixed (member.py --fixed); repeatable.
"""
import argparse
import json

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--partitions", type=int, default=3)
parser.add_argument("--orders", type=int, default=6, help="number of orders (order-1 .. order-N)")
parser.add_argument("--events", default="created,paid,packed,shipped", help="the events of each order, in order")
parser.add_argument("--first-seq", type=int, default=1, help="the sequence number of the first event")
parser.add_argument("--fail", action="append", default=[], metavar="ORDER:SEQ",
                    help="an event the member fails on until fixed, e.g. order-2:2")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare(channel, args.partitions)
channel.confirm_delivery()

count = 0
for seq, event in enumerate(args.events.split(","), start=args.first_seq):
    for n in range(1, args.orders + 1):
        order_id = f"order-{n}"
        body = {"kind": "event", "order_id": order_id, "seq": seq, "event": event,
                "bad": f"{order_id}:{seq}" in args.fail}
        channel.basic_publish(topology.SUPER_STREAM, order_id, json.dumps(body),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))
        count += 1
print(f"published {count} events for {args.orders} orders", flush=True)
connection.close()
