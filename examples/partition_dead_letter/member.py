#!/usr/bin/python3
"""A member of the consumer group `fulfil` on the super stream `order-events`: in order per order id, with parking.

    /usr/bin/python3 member.py --name m1
    /usr/bin/python3 member.py --name m2            # shares the partitions with m1
    /usr/bin/python3 member.py --name m3 --fixed    # after the fix: processes what a redrive replays

The broker gives each partition to one member of the group (x-stream-group), so one order's
events reach one member, in order. When an event fails, the member cannot drop it (its order
would go on without it: "shipped" before "paid") nor retry it forever (its partition would stop
for every order). It *parks the order*: it appends the event to the stream `order-events.parked`, and
from then on every later event of that order goes there behind it, unprocessed, while the other
orders of the partition carry on. Each event is appended (publisher confirm) before its delivery
is acked, so nothing is lost; a crash in between parks it twice, and the second copy is skipped
by its sequence number when replayed.

Which orders are parked is read from `order-events.parked` itself (parking.py), never kept only in a
member's memory, because partitions change hands when members come and go. A member takes a
partition over without being told; it notices by the offsets (x-stream-offset): a delivery that
does not follow the last one it had from that partition means someone else read in between, so
it first reads `order-events.parked` up to now (a sync marker). The previous reader acked its last
delivery only after its parking record was confirmed, and the group hands a partition over
only after every delivery is acked, so the new reader sees every order parked before.

A redrive (redrive.py ORDER) is a message published to the super stream with the order id as
routing key: it reaches the order's partition behind its events, and the member reading the
partition replays the parked events there, in order, then appends a "released" record; if one
fails again, the order stays parked from that event on. Only the partition's reader ever
decides about an order, so a redrive cannot race new events of the order. A crash during a
redrive replays it again (at-least-once, as everywhere here).

Stops after --idle-timeout seconds without a delivery; prints a summary line.
"""
import argparse
import json

import pika

import topology
from parking import ParkingLog

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--name", required=True, help="this member's name, for its output")
parser.add_argument("--partitions", type=int, default=3)
parser.add_argument("--fixed", action="store_true", help="the bug is fixed: events marked bad process fine")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a delivery (0: wait forever)")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare(channel, args.partitions)
parking = ParkingLog(args.host, args.port)
channel.basic_qos(prefetch_count=20)  # stream consumers need a prefetch; acks give credit

last_offset = {}  # partition -> offset of the last delivery this member had from it
last_seq = {}     # order id -> last sequence number processed here, to show the order is kept
stats = {"processed": 0, "parked": 0, "redriven": 0, "out_of_order": 0, "deliveries": 0}


def say(text):
    print(f"[{args.name}] {text}", flush=True)


def process(event):
    if event["bad"] and not args.fixed:
        raise ValueError("payment data does not validate")
    # ... update the order in the database ...
    key = event["order_id"]
    if event["seq"] <= last_seq.get(key, 0):
        stats["out_of_order"] += 1
    last_seq[key] = event["seq"]
    stats["processed"] += 1


def park(event, partition, offset, reason):
    parking.append({"kind": "parked", "key": event["order_id"], "event": event, "partition": partition,
                    "offset": offset, "reason": reason})
    stats["parked"] += 1


def redrive(key):
    waiting = parking.parked.get(key, [])
    done = 0
    for record in waiting:
        event = record["event"]
        if event["seq"] <= last_seq.get(key, 0):  # a second copy (parked twice by a crash): done already
            done += 1
            continue
        try:
            process(event)
        except ValueError as error:
            say(f"{key} #{event['seq']} {event['event']}: FAILED again in the redrive ({error})")
            break
        say(f"{key} #{event['seq']} {event['event']}: processed (redriven)")
        done += 1
    if done:
        parking.append({"kind": "released", "key": key, "count": done})
    stats["redriven"] += done
    rest = "released" if done == len(waiting) else f"still parked from #{waiting[done]['event']['seq']}"
    say(f"redrive of {key}: {done} of {len(waiting)} parked events processed; {rest}")


def on_delivery(partition, ch, method, properties, body):
    stats["deliveries"] += 1
    offset = (properties.headers or {}).get("x-stream-offset")
    if last_offset.get(partition) is None or offset != last_offset[partition] + 1:
        parking.sync()  # taken over (or first delivery): learn what others parked up to now
    last_offset[partition] = offset
    message = json.loads(body)
    if message["kind"] == "redrive":
        redrive(message["key"])
    else:
        key = message["order_id"]
        what = f"{key} #{message['seq']} {message['event']}"
        if key in parking.parked:
            park(message, partition, offset, "behind an earlier parked event")
            say(f"{what}: parked behind #{parking.parked[key][0]['event']['seq']}")
        else:
            try:
                process(message)
            except ValueError as error:
                park(message, partition, offset, str(error))
                say(f"{what}: FAILED ({error}); parked, and {key} with it")
            else:
                say(f"{what}: processed")
    ch.basic_ack(method.delivery_tag)  # after the parking record is confirmed: nothing is lost


for i in range(args.partitions):
    channel.basic_consume(topology.partition(i),
                          lambda ch, m, p, b, i=i: on_delivery(i, ch, m, p, b),
                          arguments={"x-stream-group": topology.GROUP, "x-stream-offset": "first"})
say("joined")

idle = 0.0
while args.idle_timeout == 0 or idle < args.idle_timeout:
    before = stats["deliveries"]
    connection.process_data_events(time_limit=0.25)
    idle = 0.0 if stats["deliveries"] != before else idle + 0.25
say(" ".join(f"{k}={v}" for k, v in stats.items()) + f" parked_orders={' '.join(sorted(parking.parked)) or 'none'}")
# Close without pika's nacks (a stream refuses them): every delivery here is acked.
channel._impl.close()
while not channel.is_closed:
    connection.process_data_events(time_limit=0.1)
connection.close()
parking.close()
