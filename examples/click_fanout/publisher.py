#!/usr/bin/python3
"""Publish ad-click events to the fanout exchange `clicks`.

A fanout exchange copies every message to every queue bound to it, whatever the
routing key. Each team (settlement, analytics, dashboard) binds its own queue, so
each one gets every click exactly once, independently of the others.

    /usr/bin/python3 publisher.py --count 1000

Start the consumers first: a fanout exchange drops messages when no queue is bound.
"""
import argparse
import json
import random
import uuid

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=100, help="number of clicks to publish")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()

# Declaring is idempotent: the consumers declare the same exchange, whoever runs first creates it.
channel.exchange_declare(exchange="clicks", exchange_type="fanout", durable=True)

# Publisher confirms: the broker acknowledges each message once it has taken
# responsibility for it. With BlockingConnection, basic_publish then waits for that
# confirm (and raises pika.exceptions.NackError if the broker refuses the message).
channel.confirm_delivery()

total_cents = 0
for _ in range(args.count):
    price_cents = random.randint(5, 250)  # prices in integer cents: no float rounding in sums
    total_cents += price_cents
    click = {
        "click_id": str(uuid.uuid4()),  # unique per click: consumers use it to spot duplicates
        "ad_id": f"ad-{random.randint(1, 20)}",
        "price_cents": price_cents,
    }
    channel.basic_publish(
        exchange="clicks",
        routing_key="",  # ignored by fanout exchanges
        body=json.dumps(click),
        properties=pika.BasicProperties(content_type="application/json", delivery_mode=2),
    )

print(f"published {args.count} clicks, total price {total_cents / 100:.2f}", flush=True)
connection.close()
