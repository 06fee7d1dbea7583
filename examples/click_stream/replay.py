#!/usr/bin/python3
"""Replay clicks from the super stream `ad-clicks`, from a point in time, for analytics.

    /usr/bin/python3 replay.py --since 7D                      # last week's clicks
    /usr/bin/python3 replay.py --from 2026-12-01T00:00:00      # since a timestamp (UTC)

A stream keeps its messages after they are read (here for 7 days: x-max-age), so a new reader
can start anywhere: x-stream-offset takes an interval back from now ("7D", "12h") or a
timestamp. This reader is in no group, so it reads every partition entirely and on its own, and
takes nothing from the groups. Stops after --idle-timeout seconds without a click and prints
how many clicks and how much money it saw.
"""
import argparse
import datetime
import json

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--partitions", type=int, default=6)
start = parser.add_mutually_exclusive_group(required=True)
start.add_argument("--since", help="an interval back from now: 7D, 12h, 30m")
start.add_argument("--from", dest="from_time", help="an ISO timestamp, UTC")
parser.add_argument("--idle-timeout", type=float, default=2)
args = parser.parse_args()

if args.since:
    offset = args.since
else:  # pika sends a datetime as an AMQP timestamp, which x-stream-offset reads as a point in time
    offset = datetime.datetime.fromisoformat(args.from_time).replace(tzinfo=datetime.timezone.utc)

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.basic_qos(prefetch_count=200)
clicks = cents = 0
ads = set()


def on_click(ch, method, properties, body):
    global clicks, cents
    click = json.loads(body)
    clicks += 1
    cents += click["price_cents"]
    ads.add(click["ad"])
    ch.basic_ack(method.delivery_tag)


for i in range(args.partitions):
    channel.basic_consume(f"ad-clicks-{i}", on_click, arguments={"x-stream-offset": offset})
idle = 0.0
while idle < args.idle_timeout:
    before = clicks
    connection.process_data_events(time_limit=0.25)
    idle = 0.0 if clicks != before else idle + 0.25
print(f"replayed {clicks} clicks for {len(ads)} ads, total price {cents / 100:.2f}", flush=True)
channel._impl.close()
while not channel.is_closed:
    connection.process_data_events(time_limit=0.1)
connection.close()
