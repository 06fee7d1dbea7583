#!/usr/bin/python3
"""Process order events in order per order id; on a failure, dead-letter it and everything after it for that order.

    /usr/bin/python3 consumer.py

The usual dead-letter setup breaks per-key order: when event #2 of order-2 fails and
is dead-lettered, events #3 and #4 of order-2 are processed anyway ("shipped" before
"paid"), and whoever repairs #2 later replays it after them. Requeueing #2
(basic_nack requeue=True) instead would retry it forever and block the whole queue.

So this consumer keeps a set of *held* order ids. When an event fails, it rejects it
(requeue=False, so the broker dead-letters it to orders.dead-letter) and holds its
order id. Every later event of a held order is rejected the same way without being
processed. The dead-letter queue then holds, for each held order, the failed event
and all its successors, in their original order, ready to be fixed and replayed as a
block; other orders carry on meanwhile.

Three details about keeping the order:
 - held events go to the dead-letter queue the same way as the failed one, by
   basic_reject, not by publishing them there ourselves: the broker dead-letters the
   rejected messages of a queue in the order they are rejected, while a publish from
   the client could overtake a dead-lettering still in progress.
 - the held set must survive a restart: this consumer rebuilds it from the
   dead-letter queue itself (any order id found there is held) when it receives its
   first event, that is when it becomes the single active consumer: a standby
   consumer's set would be stale. A real system might keep the set in a database.
 - a consumer that dies with unacked events gets them requeued, but the next active
   consumer may receive some later events first (RabbitMQ does this too). Use a small
   prefetch, and if that must never happen, check a per-key sequence number, as the
   "OUT OF ORDER" check below does.

Stops after --count events, or --idle-timeout seconds without one.
"""
import argparse
import json

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=0, help="stop after this many events (0: no limit)")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without an event (0: wait forever)")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare(channel)


def held_orders_from_dead_letters():
    """The order ids in the dead-letter queue: fetch every message unacked, then put them all back."""
    # A channel of its own: delivery tags are per channel, and the nack(multiple=True)
    # below must not touch the events delivered to the consumer.
    browser = connection.channel()
    held, last_tag = set(), None
    while True:
        method, _, body = browser.basic_get(topology.DEAD_LETTERS, auto_ack=False)
        if method is None:
            break
        held.add(json.loads(body)["order_id"])
        last_tag = method.delivery_tag
    if last_tag is not None:
        browser.basic_nack(last_tag, multiple=True, requeue=True)  # back in place, in order
    browser.close()
    return held


def process(event):
    if event["bad"]:
        raise ValueError("payment data does not validate")
    # ... update the order in the database ...


print("waiting for order events", flush=True)
channel.basic_qos(prefetch_count=20)  # prefetch is fine: we still handle deliveries one by one, in order

held = None  # order ids held back; loaded with the first delivery
last_seq = {}  # order id -> last processed sequence number, to show that order is kept
seen = 0
for method, properties, body in channel.consume(topology.ORDERS, inactivity_timeout=args.idle_timeout or None):
    if method is None:
        break
    if held is None:
        held = held_orders_from_dead_letters()
        print(f"active; held orders: {' '.join(sorted(held)) or 'none'}", flush=True)
    seen += 1
    event = json.loads(body)
    key, what = event["order_id"], f"{event['order_id']} #{event['seq']} {event['event']}"
    if key in held:
        print(f"{what}: held, dead-lettered behind an earlier failed event of {key}", flush=True)
        channel.basic_reject(method.delivery_tag, requeue=False)
    else:
        try:
            process(event)
        except ValueError as error:
            held.add(key)
            print(f"{what}: FAILED ({error}), dead-lettered; holding {key}", flush=True)
            channel.basic_reject(method.delivery_tag, requeue=False)
        else:
            order = "" if event["seq"] == last_seq.get(key, 0) + 1 else " OUT OF ORDER"
            last_seq[key] = event["seq"]
            print(f"{what}: processed{order}", flush=True)
            channel.basic_ack(method.delivery_tag)
    if args.count and seen >= args.count:
        break

channel.cancel()
connection.close()
print(f"done; held orders: {' '.join(sorted(held or ())) or 'none'}", flush=True)
