#!/usr/bin/python3
"""Schedule reminders: publish now, delivered later, through a delayed-message exchange.

    /usr/bin/python3 schedule.py 2s:"pay the invoice" 500ms:"stand up" 1m:"call back"

The exchange `reminders` has type x-delayed-message (routing as a topic exchange, its
x-delayed-type). Each message's x-delay header says how many milliseconds to hold it; the
broker stores it (persistent, in a durable exchange: it survives a restart), and routes it
by the exchange's bindings when the delay ends. Delays are up to 2^32-1 ms (49.7 days).

The publisher confirm comes once the reminder is stored, not when it is delivered. A
mandatory publish would come back at once as unroutable (the plugin's behaviour, which
Warren keeps), since nothing is routed before the delay ends: do not set it.
"""
import argparse
import re
import time

import pika

EXCHANGE = "reminders"
UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}


def parse(spec):
    m = re.fullmatch(r"(\d+)(ms|s|m|h):(.+)", spec)
    if not m:
        raise argparse.ArgumentTypeError(f"{spec!r} is not DELAY:TEXT (e.g. 2s:hello, 500ms:hi)")
    return int(m.group(1)) * UNITS[m.group(2)], m.group(3)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--topic", default="reminder.personal", help="routing key")
parser.add_argument("reminders", nargs="+", type=parse, metavar="DELAY:TEXT")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.exchange_declare(EXCHANGE, "x-delayed-message", durable=True, arguments={"x-delayed-type": "topic"})
channel.confirm_delivery()

for delay_ms, text in args.reminders:
    due = time.time() + delay_ms / 1000
    channel.basic_publish(EXCHANGE, args.topic, text.encode(),
                          pika.BasicProperties(delivery_mode=2, headers={"x-delay": delay_ms, "due-at-ms": int(due * 1000)}))
    print(f"scheduled {text!r} for {time.strftime('%H:%M:%S', time.localtime(due))}.{int(due * 1000) % 1000:03d}",
          flush=True)
connection.close()
