"""The retry-with-backoff topology: one queue, its retry policy in its arguments.

    pdf.thumbnails          the work queue. A job the worker rejects with requeue=True
                            waits out a backoff inside the broker, then comes back with
                            x-delivery-count; past x-delivery-limit it is dead-lettered.
    pdf.thumbnails.failed   the parking lot: jobs past their last attempt (reason
                            delivery_limit) and jobs rejected as hopeless (reason rejected).

No TTL queue, no retry exchange, no arithmetic in the worker: compare ../retry_pipeline.
The arguments are RabbitMQ 4.3's (x-delayed-retry-type, -min, -max) and LavinMQ's
(x-delayed-retry-multiplier); x-delayed-retry-jitter is Warren's.
"""

WORK_QUEUE = "pdf.thumbnails"
FAILED_QUEUE = "pdf.thumbnails.failed"


def work_arguments(retry_min_ms, retry_max_ms, max_attempts, jitter_percent):
    return {
        "x-delayed-retry-type": "failed",  # rejects and crashed workers wait; nacks do not
        "x-delayed-retry-min": retry_min_ms,  # the first wait
        "x-delayed-retry-multiplier": 2,  # then 2x, 4x, 8x ... (exponential)
        "x-delayed-retry-max": retry_max_ms,  # never longer than this
        "x-delayed-retry-jitter": jitter_percent,  # up to this % shorter, so retries spread out
        "x-delivery-limit": max_attempts - 1,  # redeliveries: the first delivery is attempt 1
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": FAILED_QUEUE,
    }


def declare(channel, retry_min_ms=1000, retry_max_ms=60000, max_attempts=5, jitter_percent=20):
    channel.queue_declare(queue=FAILED_QUEUE, durable=True)
    channel.queue_declare(queue=WORK_QUEUE, durable=True,
                          arguments=work_arguments(retry_min_ms, retry_max_ms, max_attempts, jitter_percent))
