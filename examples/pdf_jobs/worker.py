#!/usr/bin/python3
"""Render PDF thumbnails from `pdf.jobs`, retrying transient failures with nack/requeue.

    /usr/bin/python3 worker.py --failure-rate 0.3

The three answers a consumer can give the broker:
  basic_ack                     done: the broker deletes the message.
  basic_nack(requeue=True)      transient failure (a timeout, a busy disk): the broker
                                puts the message back in the queue and delivers it again,
                                to this or another consumer, with redelivered=True.
  basic_reject(requeue=False)   permanent failure (a corrupt file): retrying is pointless,
                                the broker drops the message, or dead-letters it if the
                                queue has an x-dead-letter-exchange (see ../retry_pipeline).

Requeueing retries at once and forever: a job that keeps failing loops through the
queue. ../retry_pipeline retries after a delay, and only a bounded number of times.

Stops after --count finished jobs (rendered or rejected), or after --idle-timeout
seconds without a message.
"""
import argparse
import json
import random
import time

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--failure-rate", type=float, default=0.2, help="chance that a render fails transiently")
parser.add_argument("--render-ms", type=int, default=10, help="simulated render time per page")
parser.add_argument("--seed", type=int, help="random seed, for repeatable runs")
parser.add_argument("--count", type=int, default=0, help="stop after this many finished jobs (0: no limit)")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a message (0: wait forever)")
args = parser.parse_args()
rng = random.Random(args.seed)


class TransientError(Exception):
    pass


class PermanentError(Exception):
    pass


def render_thumbnail(job):
    """Pretend to render the first page of job['file']."""
    if job["corrupt"]:
        raise PermanentError(f"{job['file']} is not a PDF")
    time.sleep(args.render_ms * job["pages"] / 1000)
    if rng.random() < args.failure_rate:
        raise TransientError("renderer timed out")
    return job["file"].replace(".pdf", ".png")


connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.queue_declare(queue="pdf.jobs", durable=True)
channel.basic_qos(prefetch_count=1)

print("waiting for jobs", flush=True)
rendered, rejected, retries = set(), set(), 0
for method, properties, body in channel.consume("pdf.jobs", inactivity_timeout=args.idle_timeout or None):
    if method is None:
        break
    job = json.loads(body)
    tag = " (redelivered)" if method.redelivered else ""
    try:
        png = render_thumbnail(job)
    except TransientError as e:
        retries += 1
        print(f"job {job['job_id']}{tag}: {e}, requeued", flush=True)
        channel.basic_nack(method.delivery_tag, requeue=True)
    except PermanentError as e:
        rejected.add(job["job_id"])
        print(f"job {job['job_id']}{tag}: {e}, rejected", flush=True)
        channel.basic_reject(method.delivery_tag, requeue=False)
    else:
        rendered.add(job["job_id"])
        print(f"job {job['job_id']}{tag}: rendered {png}", flush=True)
        channel.basic_ack(method.delivery_tag)
    if args.count and len(rendered) + len(rejected) >= args.count:
        break

channel.cancel()
connection.close()
print(f"rendered={len(rendered)} rejected={len(rejected)} requeued={retries}", flush=True)
