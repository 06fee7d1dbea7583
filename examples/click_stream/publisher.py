#!/usr/bin/python3
"""Publish ad clicks to the super stream `ad-clicks`, keyed by ad id.

    /usr/bin/python3 publisher.py --count 1000 --ads 20

The routing key is the ad id, so each ad's clicks land in one partition, in the order they were
published. Each click carries its ad's sequence number (1, 2, 3, ... per ad) so that consumers
can check the order. Publisher confirms: the click is stored when the publish returns.
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
parser.add_argument("--ads", type=int, default=20, help="number of different ads")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.confirm_delivery()

rng = random.Random(7)
seq = {}
cents = 0
for _ in range(args.count):
    ad = f"ad-{rng.randrange(args.ads)}"
    seq[ad] = seq.get(ad, 0) + 1
    price = rng.randrange(5, 200)
    cents += price
    click = {"click_id": str(uuid.uuid4()), "ad": ad, "seq": seq[ad], "price_cents": price}
    channel.basic_publish("ad-clicks", routing_key=ad, body=json.dumps(click))
print(f"published {args.count} clicks for {len(seq)} ads, total price {cents / 100:.2f}", flush=True)
connection.close()
