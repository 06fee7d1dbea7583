"""The exchanges and queues of the retry pipeline, declared by every script that needs them.

    submit.py --> [pdf.work exchange] --> pdf.work queue --> worker.py --ack--> done
                        ^                     |
                        |             reject (requeue=False): dead-lettered via
                        |             x-dead-letter-exchange to
                        |                     v
                        |              [pdf.retry exchange] --> pdf.retry.5s queue
                        |                                      (x-message-ttl 5000,
                        +---- expired: dead-lettered via ------ no consumers)
                              x-dead-letter-exchange

    worker.py, on the last attempt --> pdf.parking-lot queue (via the default exchange)

The retry queue is named after its delay: a queue's arguments can't change once it
exists (redeclaring it with another x-message-ttl fails with PRECONDITION_FAILED), so
another delay makes another queue. If you change the delay, delete the old queue.
"""
WORK_EXCHANGE = "pdf.work"
WORK_QUEUE = "pdf.work"
WORK_ROUTING_KEY = "pdf.work"
RETRY_EXCHANGE = "pdf.retry"
PARKING_LOT = "pdf.parking-lot"


def retry_queue_name(delay_ms):
    return f"pdf.retry.{delay_ms // 1000}s" if delay_ms % 1000 == 0 else f"pdf.retry.{delay_ms}ms"


def declare_work(channel):
    channel.exchange_declare(WORK_EXCHANGE, exchange_type="direct", durable=True)
    channel.exchange_declare(RETRY_EXCHANGE, exchange_type="fanout", durable=True)
    # Rejected messages (requeue=False) go to the retry exchange, with their routing key.
    channel.queue_declare(WORK_QUEUE, durable=True, arguments={"x-dead-letter-exchange": RETRY_EXCHANGE})
    channel.queue_bind(WORK_QUEUE, WORK_EXCHANGE, routing_key=WORK_ROUTING_KEY)


def declare_retry(channel, delay_ms):
    # Nobody consumes the retry queue: messages sit there until their TTL runs out, then
    # the broker dead-letters them back to the work exchange, keeping the original
    # routing key (pdf.work) since there is no x-dead-letter-routing-key.
    queue = retry_queue_name(delay_ms)
    channel.queue_declare(queue, durable=True,
                          arguments={"x-message-ttl": delay_ms, "x-dead-letter-exchange": WORK_EXCHANGE})
    channel.queue_bind(queue, RETRY_EXCHANGE)
    return queue


def declare_parking_lot(channel):
    channel.queue_declare(PARKING_LOT, durable=True)
