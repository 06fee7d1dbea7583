#!/usr/bin/python3
"""Consume ad-click events from the fanout exchange `clicks` into one team's queue.

    /usr/bin/python3 consumer.py --queue settlement
    /usr/bin/python3 consumer.py --queue analytics --count 1000

Each team has its own durable queue bound to `clicks`, so every team sees every
click. Messages are acked manually, after they have been counted: if the consumer
dies first, the broker redelivers them. Redelivery means a click can arrive twice,
so the consumer checks the click id (at-least-once delivery, idempotent consumer).

Stops after --count clicks, or after --idle-timeout seconds without a message,
then prints a summary: clicks, sum of prices, duplicates.
"""
import argparse
import json

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--queue", required=True, choices=["settlement", "analytics", "dashboard"])
parser.add_argument("--count", type=int, default=0, help="stop after this many clicks (0: no limit)")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a click (0: wait forever)")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()

channel.exchange_declare(exchange="clicks", exchange_type="fanout", durable=True)
channel.queue_declare(queue=args.queue, durable=True)
channel.queue_bind(queue=args.queue, exchange="clicks")  # no routing key needed for fanout
channel.basic_qos(prefetch_count=100)  # at most 100 unacked clicks in flight to this consumer

print(f"[{args.queue}] waiting for clicks", flush=True)

seen = set()
clicks = duplicates = redelivered = total_cents = 0
# channel.consume() is a generator of (method, properties, body). With an
# inactivity_timeout it yields (None, None, None) when nothing arrived in time.
for method, properties, body in channel.consume(args.queue, inactivity_timeout=args.idle_timeout or None):
    if method is None:
        break  # idle timeout
    click = json.loads(body)
    if method.redelivered:
        redelivered += 1
    if click["click_id"] in seen:
        duplicates += 1  # already counted: ack it, but don't count it twice
    else:
        seen.add(click["click_id"])
        clicks += 1
        total_cents += click["price_cents"]
    channel.basic_ack(method.delivery_tag)
    if args.count and clicks + duplicates >= args.count:
        break

channel.cancel()  # stop the consumer; anything prefetched but not acked goes back to the queue
connection.close()
print(f"[{args.queue}] clicks={clicks} sum={total_cents / 100:.2f} duplicates={duplicates} "
      f"redelivered={redelivered}", flush=True)
