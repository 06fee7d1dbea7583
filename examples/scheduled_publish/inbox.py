#!/usr/bin/python3
"""Receive reminders from the delayed exchange `reminders` and say how late each one is.

    /usr/bin/python3 inbox.py --count 3

Binds the durable queue `reminders.inbox` to `reminders` with `reminder.#`. The broker delivers
each reminder when its x-delay ends, with x-delay made negative (as the delayed-message plugin
does), so a consumer can tell a delayed message from another.
"""
import argparse
import time

import pika

EXCHANGE = "reminders"
QUEUE = "reminders.inbox"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=0, help="stop after this many reminders (0: no limit)")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a message (0: wait forever)")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.exchange_declare(EXCHANGE, "x-delayed-message", durable=True, arguments={"x-delayed-type": "topic"})
channel.queue_declare(QUEUE, durable=True)
channel.queue_bind(QUEUE, EXCHANGE, "reminder.#")

print("waiting for reminders", flush=True)
received = 0
for method, properties, body in channel.consume(QUEUE, inactivity_timeout=args.idle_timeout or None):
    if method is None:
        break
    headers = properties.headers or {}
    late_ms = time.time() * 1000 - headers.get("due-at-ms", 0)
    print(f"reminder {body.decode()!r}: held {-headers.get('x-delay', 0)} ms, "
          f"arrived {max(late_ms, 0):.0f} ms after its time", flush=True)
    channel.basic_ack(method.delivery_tag)
    received += 1
    if args.count and received >= args.count:
        break

channel.cancel()
connection.close()
print(f"received {received} reminders", flush=True)
