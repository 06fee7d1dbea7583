#!/usr/bin/python3
"""List the dead-lettered order events in `orders.dead-letter`, in queue order, leaving them there.

    /usr/bin/python3 show_dead_letters.py

To release a held order: fix the cause, stop the consumer, move that order's
dead-lettered events back to `orders` in this order (before any newer event of the
order), delete them from the dead-letter queue, and restart the consumer.
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
topology.declare(channel)

last_tag, count = None, 0
while True:
    method, properties, body = channel.basic_get(topology.DEAD_LETTERS, auto_ack=False)
    if method is None:
        break
    last_tag, count = method.delivery_tag, count + 1
    event = json.loads(body)
    death = (properties.headers or {}).get("x-death", [{}])[0]
    print(f"{event['order_id']} #{event['seq']} {event['event']}: "
          f"{death.get('reason')} from queue {death.get('queue')}")
if last_tag is not None:
    channel.basic_nack(last_tag, multiple=True, requeue=True)  # put them all back, in order
print(f"{count} dead-lettered events")
connection.close()
