#!/usr/bin/python3
"""Take jobs from the work queue `jobs`, one at a time, and ack each when done.

    /usr/bin/python3 worker.py --name w1
    /usr/bin/python3 worker.py --name w2 --speed 2     # twice as fast

Run several workers side by side. With prefetch 1 the broker gives a worker a new
job only when it has acked the previous one, so fast workers take more jobs and a
slow worker never sits on a backlog (fair dispatch). Without prefetch, RabbitMQ
would hand out jobs round-robin as they arrive, whatever each worker's speed.

Manual acks make the queue safe: kill a worker in the middle of a job (Ctrl-C,
kill -9) and its unacked job goes back to the queue and to another worker, flagged
redelivered=True. Stops after --count jobs or --idle-timeout seconds without one.
"""
import argparse
import json
import time

import pika

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--name", default="worker", help="name shown in the output")
parser.add_argument("--prefetch", type=int, default=1, help="unacked jobs this worker may hold")
parser.add_argument("--speed", type=float, default=1.0, help="work speed factor (2: jobs take half as long)")
parser.add_argument("--count", type=int, default=0, help="stop after this many jobs (0: no limit)")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a job (0: wait forever)")
args = parser.parse_args()

connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
channel.queue_declare(queue="jobs", durable=True)
channel.basic_qos(prefetch_count=args.prefetch)

print(f"{args.name}: waiting for jobs", flush=True)
done = []
for method, properties, body in channel.consume("jobs", inactivity_timeout=args.idle_timeout or None):
    if method is None:
        break  # idle timeout
    job = json.loads(body)
    again = " (redelivered)" if method.redelivered else ""
    print(f"{args.name}: started job {job['job_id']}{again}", flush=True)
    # Simulated work. Blocking here is fine for short jobs; for jobs longer than the
    # heartbeat timeout, run them in a thread, or pika's BlockingConnection misses heartbeats.
    time.sleep(job["work_ms"] / 1000 / args.speed)
    channel.basic_ack(method.delivery_tag)  # only now is the job gone from the broker
    print(f"{args.name}: done job {job['job_id']}{again}", flush=True)
    done.append(job["job_id"])
    if args.count and len(done) >= args.count:
        break

channel.cancel()
connection.close()
print(f"{args.name}: processed {len(done)} jobs: {' '.join(map(str, done))}", flush=True)
