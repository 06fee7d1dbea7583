#!/usr/bin/python3
"""An RPC server: answers Fibonacci requests from the queue `rpc.fib`.

    /usr/bin/python3 server.py

Each request carries two properties set by the client: reply_to (where to send the
answer; with direct reply-to it looks like amq.rabbitmq.reply-to.g1h2AA...) and
correlation_id (copied into the answer so the client can match it to its request).
The server publishes the answer to the default exchange with routing key reply_to;
the broker hands it straight to the waiting client, no queue involved.

Stops after --count requests or --idle-timeout seconds without one (default: never).
"""
import argparse

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=0, help="stop after this many requests (0: no limit)")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a request (0: wait forever)")
args = parser.parse_args()


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.queue_declare(queue="rpc.fib")
channel.basic_qos(prefetch_count=10)

print("waiting for requests on rpc.fib", flush=True)
served = 0
for method, properties, body in channel.consume("rpc.fib", inactivity_timeout=args.idle_timeout or None):
    if method is None:
        break
    n = int(body)
    print(f"fib({n}) for {properties.correlation_id}", flush=True)
    channel.basic_publish(exchange="", routing_key=properties.reply_to, body=str(fib(n)),
                          properties=pika.BasicProperties(correlation_id=properties.correlation_id))
    channel.basic_ack(method.delivery_tag)  # ack after replying: a crash before it means the request is redone
    served += 1
    if args.count and served >= args.count:
        break

channel.cancel()
connection.close()
print(f"served {served} requests", flush=True)
