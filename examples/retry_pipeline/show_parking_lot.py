#!/usr/bin/python3
"""Show the jobs in the parking lot `pdf.parking-lot`, with their x-death history; optionally replay them.

    /usr/bin/python3 show_parking_lot.py             # look, leave them there
    /usr/bin/python3 show_parking_lot.py --replay    # send them back to the work exchange

Messages are fetched with basic_get and not acked while we look at them, so each is
seen once. Then they are either nacked with requeue=True (they go back to the
parking lot, in order) or, with --replay, republished to the work exchange and acked.
"""
import argparse

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--replay", action="store_true", help="republish the parked jobs to the work exchange")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare_work(channel)
topology.declare_parking_lot(channel)
channel.confirm_delivery()

parked = []
while True:
    method, properties, body = channel.basic_get(topology.PARKING_LOT, auto_ack=False)
    if method is None:
        break  # the queue is empty (apart from what we hold unacked)
    parked.append((method, properties, body))
    headers = properties.headers or {}
    print(f"{properties.message_id}: {body.decode()}")
    print(f"  error: {headers.get('x-parked-error')} after {headers.get('x-parked-attempts')} attempts")
    # x-death: one entry per (queue, reason), most recent first. "time" is the first
    # time this happened, "count" how many times it did.
    for death in headers.get("x-death", []):
        print(f"  x-death: queue={death['queue']} reason={death['reason']} count={death['count']} "
              f"time={death['time'].isoformat()}Z exchange={death['exchange']} "
              f"routing-keys={','.join(death['routing-keys'])}")

if args.replay:
    for method, properties, body in parked:
        # Drop the dead-lettering history, or the worker would count the old rejections and
        # park the job again after one failure. Keep a replay counter instead.
        headers = {k: v for k, v in (properties.headers or {}).items()
                   if not k.startswith(("x-death", "x-first-death", "x-last-death", "x-parked"))}
        headers["x-replays"] = headers.get("x-replays", 0) + 1
        properties.headers = headers
        channel.basic_publish(topology.WORK_EXCHANGE, topology.WORK_ROUTING_KEY, body, properties,
                              mandatory=True)
        channel.basic_ack(method.delivery_tag)  # only once the confirm for the replay arrived
    print(f"replayed {len(parked)} parked jobs to exchange {topology.WORK_EXCHANGE}")
else:
    if parked:
        # All of them back to the parking lot, in their order.
        channel.basic_nack(parked[-1][0].delivery_tag, multiple=True, requeue=True)
    print(f"{len(parked)} parked jobs")
connection.close()
