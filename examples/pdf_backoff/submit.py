#!/usr/bin/python3
"""Submit PDF thumbnail jobs to `pdf.thumbnails`, a queue that retries with backoff.

    /usr/bin/python3 submit.py --count 6 --flaky-every 2 --broken-every 3

--flaky-every n: every n-th job fails its first --flaky-failures attempts, then renders.
--broken-every n: every n-th job fails every attempt and ends in pdf.thumbnails.failed.
--corrupt-every n: every n-th job is not a PDF at all: rejected at once, never retried.
Pass the same --retry-min-ms, --retry-max-ms and --max-attempts as the worker (the queue's
arguments must match on every declare).
"""
import argparse
import json

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--count", type=int, default=6, help="number of jobs to submit")
parser.add_argument("--flaky-every", type=int, default=2)
parser.add_argument("--flaky-failures", type=int, default=2)
parser.add_argument("--broken-every", type=int, default=3)
parser.add_argument("--corrupt-every", type=int, default=0)
parser.add_argument("--retry-min-ms", type=int, default=1000)
parser.add_argument("--retry-max-ms", type=int, default=60000)
parser.add_argument("--max-attempts", type=int, default=5)
parser.add_argument("--jitter", type=int, default=20, help="retry jitter, percent")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare(channel, args.retry_min_ms, args.retry_max_ms, args.max_attempts, args.jitter)
channel.confirm_delivery()  # basic_publish returns once the job is stored

for job_id in range(1, args.count + 1):
    corrupt = args.corrupt_every > 0 and job_id % args.corrupt_every == 0
    broken = not corrupt and args.broken_every > 0 and job_id % args.broken_every == 0
    flaky = not corrupt and not broken and args.flaky_every > 0 and job_id % args.flaky_every == 0
    job = {"job_id": job_id, "file": f"invoice-{job_id}.pdf", "corrupt": corrupt, "broken": broken,
           "flaky_failures": args.flaky_failures if flaky else 0}
    channel.basic_publish("", topology.WORK_QUEUE, json.dumps(job),
                          pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                               message_id=f"job-{job_id}"))

print(f"submitted {args.count} jobs", flush=True)
connection.close()
