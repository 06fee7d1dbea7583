#!/usr/bin/python3
"""One member of a consumer group reading the super stream `ad-clicks`.

    /usr/bin/python3 group_consumer.py --group settlement --name s1
    /usr/bin/python3 group_consumer.py --group settlement --name s2     # shares the work with s1
    /usr/bin/python3 group_consumer.py --group analytics --name a1      # reads everything again

The member consumes every partition with the consumer argument x-stream-group. The broker lets
one member of the group read each partition (partition mod members), moves partitions when
members come and go, and remembers per partition what the group has acked, so a restarted
member goes on where the group stopped. Every group reads every click; inside a group each click
goes to one member, and one ad's clicks arrive in order. Stops after --idle-timeout seconds
without a click and prints a summary: clicks, sum of prices, clicks out of order per ad.
"""
import argparse
import json

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--group", required=True, help="the consumer group, e.g. settlement, analytics, dashboard")
parser.add_argument("--name", required=True, help="this member's name, for the summary")
parser.add_argument("--partitions", type=int, default=6)
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a click (0: wait forever)")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.basic_qos(prefetch_count=50)  # stream consumers need a prefetch; acks give credit

last_seq = {}
clicks = out_of_order = cents = 0


def on_click(ch, method, properties, body):
    global clicks, out_of_order, cents
    click = json.loads(body)
    # Within a group, a partition changes hands only after its previous reader's acks: an ad's
    # clicks come in order even across members, and this member sees a suffix of each ad's clicks.
    if click["seq"] <= last_seq.get(click["ad"], 0):
        out_of_order += 1
    last_seq[click["ad"]] = click["seq"]
    clicks += 1
    cents += click["price_cents"]
    ch.basic_ack(method.delivery_tag)


for i in range(args.partitions):
    channel.basic_consume(f"ad-clicks-{i}", on_click,
                          arguments={"x-stream-group": args.group, "x-stream-offset": "first"})
print(f"[{args.group}/{args.name}] joined", flush=True)

idle = 0.0
while args.idle_timeout == 0 or idle < args.idle_timeout:
    before = clicks
    connection.process_data_events(time_limit=0.25)
    idle = 0.0 if clicks != before else idle + 0.25
print(f"[{args.group}/{args.name}] clicks={clicks} sum={cents / 100:.2f} ads={len(last_seq)} "
      f"out_of_order={out_of_order}", flush=True)
# Closing the channel without pika's nacks (a stream refuses them): every click here is acked.
channel._impl.close()
while not channel.is_closed:
    connection.process_data_events(time_limit=0.1)
connection.close()
