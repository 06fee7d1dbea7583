"""Queues of the ordered dead-letter example.

    producer.py --> orders queue --> consumer.py --ack--> processed
                      |  (x-single-active-consumer: one consumer at a time, in order)
                      | reject(requeue=False): dead-lettered via x-dead-letter-exchange
                      v
                  [orders.dlx fanout exchange] --> orders.dead-letter queue
"""
ORDERS = "orders"
DLX = "orders.dlx"
DEAD_LETTERS = "orders.dead-letter"


def declare(channel):
    channel.exchange_declare(DLX, exchange_type="fanout", durable=True)
    channel.queue_declare(DEAD_LETTERS, durable=True)
    channel.queue_bind(DEAD_LETTERS, DLX)
    channel.queue_declare(ORDERS, durable=True, arguments={
        "x-dead-letter-exchange": DLX,
        # Per-key order needs one consumer working through the queue in order. With single
        # active consumer you may start several consumers: one works, the others stand by
        # and the broker switches to one of them if it goes away.
        "x-single-active-consumer": True,
    })
