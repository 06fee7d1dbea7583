#!/usr/bin/python3
"""Publish order events (created, paid, packed, shipped) for a few orders to the queue `orders`.

    /usr/bin/python3 producer.py --orders 3 --fail order-2:2

Events of different orders are interleaved, as they would be in real life; the
events of one order must be processed in sequence. --fail ORDER:SEQ marks an event
that the consumer will fail to process (repeatable).
"""
import argparse
import json

import pika

import topology

EVENTS = ["created", "paid", "packed", "shipped"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--orders", type=int, default=3, help="number of orders")
parser.add_argument("--fail", action="append", default=[], metavar="ORDER:SEQ",
                    help="an event the consumer fails on, e.g. order-2:2")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare(channel)
channel.confirm_delivery()

count = 0
for seq, event in enumerate(EVENTS, start=1):
    for n in range(1, args.orders + 1):
        order_id = f"order-{n}"
        body = {"order_id": order_id, "seq": seq, "event": event, "bad": f"{order_id}:{seq}" in args.fail}
        channel.basic_publish("", topology.ORDERS, json.dumps(body),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                                   message_id=f"{order_id}#{seq}"))
        count += 1

print(f"published {count} events for {args.orders} orders", flush=True)
connection.close()
