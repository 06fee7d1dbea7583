"""A worker that takes messages and never acks them: it prints each body on a line and waits to be
killed. test_delivery uses it to lose a consumer (and its TCP connection) with unacked messages.

Usage: hold_worker.py HOST PORT USER PASSWORD QUEUE PREFETCH
"""
import sys

import pika


def main():
    host, port, user, password, queue, prefetch = sys.argv[1:7]
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host=host, port=int(port), credentials=pika.PlainCredentials(user, password),
        connection_attempts=1))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=int(prefetch))

    def on_message(_ch, method, _props, body):
        sys.stdout.write("%d %s\n" % (method.delivery_tag, body.decode()))
        sys.stdout.flush()

    ch.basic_consume(queue, on_message, auto_ack=False)
    sys.stdout.write("consuming\n")
    sys.stdout.flush()
    while True:
        conn.process_data_events(time_limit=1)


if __name__ == "__main__":
    main()
