#!/usr/bin/python3
"""Ask for a parked order's events to be replayed, once the cause of the failure is fixed.

    /usr/bin/python3 redrive.py order-2

Publishes {"kind": "redrive", "key": ORDER} to the super stream with the order id as routing
key: it lands in the order's partition, behind every event of the order published before, and
the group member reading that partition replays the parked events there, in order (member.py).
Nothing is taken out of `order-events.parked`: it is a log; "released" records say what was replayed.
"""
import argparse
import json

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("key", help="the order id to redrive")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.confirm_delivery()
channel.basic_publish(topology.SUPER_STREAM, args.key, json.dumps({"kind": "redrive", "key": args.key}),
                      pika.BasicProperties(content_type="application/json", delivery_mode=2))
print(f"redrive of {args.key} requested", flush=True)
connection.close()
