#!/usr/bin/python3
"""An RPC client using direct reply-to (amq.rabbitmq.reply-to): no reply queue to declare or delete.

    /usr/bin/python3 client.py 10 20 30
    /usr/bin/python3 client.py --count 5          # asks fib(0) .. fib(4)

Direct reply-to, in three rules:
 1. consume from the pseudo-queue "amq.rabbitmq.reply-to" in no-ack mode (auto_ack=True),
 2. *before* publishing the requests, on the *same channel*,
 3. publish the requests with reply_to="amq.rabbitmq.reply-to"; the broker rewrites
    it into a name that routes back to this channel's consumer.
Answers are not stored: if the client is gone, they are dropped.

Requests are sent all at once and matched to their answers by correlation_id.
"""
import argparse
import sys
import time
import uuid

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=5, help="ask fib(0) .. fib(count-1) when no numbers are given")
parser.add_argument("--timeout", type=float, default=10, help="seconds to wait for all answers")
parser.add_argument("numbers", nargs="*", type=int)
args = parser.parse_args()
numbers = args.numbers or list(range(args.count))

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()

answers = {}  # correlation id -> answer


def on_reply(channel, method, properties, body):
    answers[properties.correlation_id] = int(body)


channel.basic_consume(queue="amq.rabbitmq.reply-to", on_message_callback=on_reply, auto_ack=True)

requests = {}  # correlation id -> n
for n in numbers:
    correlation_id = str(uuid.uuid4())
    requests[correlation_id] = n
    channel.basic_publish(exchange="", routing_key="rpc.fib", body=str(n),
                          properties=pika.BasicProperties(reply_to="amq.rabbitmq.reply-to",
                                                          correlation_id=correlation_id))

deadline = time.monotonic() + args.timeout
while len(answers) < len(requests) and time.monotonic() < deadline:
    connection.process_data_events(time_limit=deadline - time.monotonic())  # returns on each event

for correlation_id, n in requests.items():
    print(f"fib({n}) = {answers.get(correlation_id, 'no answer')}", flush=True)
connection.close()
sys.exit(0 if len(answers) == len(requests) else 1)
