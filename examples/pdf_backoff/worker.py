#!/usr/bin/python3
"""Render PDF thumbnails from `pdf.thumbnails`; the broker retries failures with backoff.

    /usr/bin/python3 worker.py

A transient failure (a timeout, a busy renderer): basic_reject(requeue=True). The queue's
x-delayed-retry-* arguments make the broker hold the job for its backoff (1 s, 2 s, 4 s ...,
see topology.py) before delivering it again, to this or another worker, with
x-delivery-count = the attempts so far. Past x-delivery-limit the broker dead-letters it to
pdf.thumbnails.failed with x-death reason delivery_limit. A permanent failure (not a PDF):
basic_reject(requeue=False), dead-lettered at once with reason rejected.

The worker keeps no timers and no counters, and a crash loses nothing: the wait, the count
and the deadline are the broker's, and survive its restart.

Stops after --count finished jobs (rendered, or given up), or --idle-timeout seconds without
a message (make it longer than the longest backoff).
"""
import argparse
import json
import time

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--retry-min-ms", type=int, default=1000)
parser.add_argument("--retry-max-ms", type=int, default=60000)
parser.add_argument("--max-attempts", type=int, default=5)
parser.add_argument("--jitter", type=int, default=20, help="retry jitter, percent")
parser.add_argument("--count", type=int, default=0, help="stop after this many finished jobs (0: no limit)")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a message (0: wait forever)")
args = parser.parse_args()


class TransientError(Exception):
    pass


class PermanentError(Exception):
    pass


def render(job, attempt):
    if job["corrupt"]:
        raise PermanentError(f"{job['file']} is not a PDF")
    if job["broken"] or attempt <= job["flaky_failures"]:
        raise TransientError("renderer busy")
    return job["file"].replace(".pdf", ".png")


connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare(channel, args.retry_min_ms, args.retry_max_ms, args.max_attempts, args.jitter)
channel.basic_qos(prefetch_count=1)

print("waiting for jobs", flush=True)
rendered, rejected, retries = 0, 0, 0
last_try = {}  # job id -> when it last failed, to show the backoff the broker applied
for method, properties, body in channel.consume(topology.WORK_QUEUE,
                                                inactivity_timeout=args.idle_timeout or None):
    if method is None:
        break
    job = json.loads(body)
    attempt = 1 + (properties.headers or {}).get("x-delivery-count", 0)
    waited = ""
    if job["job_id"] in last_try:
        waited = f" (after {time.monotonic() - last_try[job['job_id']]:.1f} s)"
    try:
        png = render(job, attempt)
    except TransientError as e:
        last_try[job["job_id"]] = time.monotonic()
        if attempt >= args.max_attempts:
            print(f"job {job['job_id']} attempt {attempt}{waited}: {e}; out of attempts", flush=True)
            rejected += 1
        else:
            retries += 1
            print(f"job {job['job_id']} attempt {attempt}{waited}: {e}; retried later", flush=True)
        # The broker decides: back after the backoff, or past the limit to the parking lot.
        channel.basic_reject(method.delivery_tag, requeue=True)
    except PermanentError as e:
        rejected += 1
        print(f"job {job['job_id']} attempt {attempt}: {e}; rejected", flush=True)
        channel.basic_reject(method.delivery_tag, requeue=False)
    else:
        rendered += 1
        print(f"job {job['job_id']} attempt {attempt}{waited}: rendered {png}", flush=True)
        channel.basic_ack(method.delivery_tag)
    if args.count and rendered + rejected >= args.count:
        break

channel.cancel()
failed = channel.queue_declare(queue=topology.FAILED_QUEUE, durable=True, passive=True).method.message_count
connection.close()
print(f"rendered={rendered} given-up={rejected} retries={retries} in {topology.FAILED_QUEUE}: {failed}", flush=True)
