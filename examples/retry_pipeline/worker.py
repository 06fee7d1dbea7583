#!/usr/bin/python3
"""Render PDF jobs from `pdf.work`; retry failures after a delay; park them after N attempts.

    /usr/bin/python3 worker.py --max-attempts 3 --retry-delay-ms 5000

On failure the worker rejects the job (requeue=False). The work queue dead-letters it
to the retry exchange, the retry queue holds it for the delay (x-message-ttl), then
dead-letters it back to the work exchange. No timers in the worker, no lost jobs if
it crashes: the delay lives in the broker.

Each dead-lettering adds to the message's x-death header, a list with one entry per
(queue, reason) and a count. The entry for (pdf.work, rejected) counts our
rejections, so this attempt's number is that count + 1. When the last attempt fails,
the worker publishes the job to the parking lot queue `pdf.parking-lot` (keeping its
headers, so the history stays with it) and acks it. See show_parking_lot.py.

Stops after --count finished jobs (rendered or parked), or --idle-timeout seconds
without a message (make it longer than the retry delay).
"""
import argparse
import json

import pika

import topology

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=5672)
parser.add_argument("--max-attempts", type=int, default=3)
parser.add_argument("--retry-delay-ms", type=int, default=5000, help="delay before each retry")
parser.add_argument("--count", type=int, default=0, help="stop after this many finished jobs (0: no limit)")
parser.add_argument("--idle-timeout", type=float, default=0,
                    help="stop after this many seconds without a message (0: wait forever)")
args = parser.parse_args()


def render(job, attempt):
    """Pretend to render job['file']; broken and flaky jobs raise."""
    if job["broken"]:
        raise RuntimeError(f"{job['file']}: unsupported PDF version")
    if attempt <= job["flaky_failures"]:
        raise RuntimeError(f"{job['file']}: font server unavailable")
    return job["file"].replace(".pdf", ".png")


def rejections(properties):
    """How many times this message was rejected from the work queue, from its x-death header."""
    for death in (properties.headers or {}).get("x-death", []):
        if death["queue"] == topology.WORK_QUEUE and death["reason"] == "rejected":
            return death["count"]
    return 0


connection = pika.BlockingConnection(pika.ConnectionParameters(host=args.host, port=args.port))
channel = connection.channel()
topology.declare_work(channel)
retry_queue = topology.declare_retry(channel, args.retry_delay_ms)
topology.declare_parking_lot(channel)
channel.confirm_delivery()  # so that a parked job is safely in the parking lot before we ack it
channel.basic_qos(prefetch_count=10)

print(f"waiting for jobs (retry queue {retry_queue}, max {args.max_attempts} attempts)", flush=True)
rendered = parked = retried = 0
for method, properties, body in channel.consume(topology.WORK_QUEUE, inactivity_timeout=args.idle_timeout or None):
    if method is None:
        break
    job = json.loads(body)
    attempt = rejections(properties) + 1
    try:
        png = render(job, attempt)
    except RuntimeError as error:
        if attempt < args.max_attempts:
            print(f"job {job['job_id']} attempt {attempt}: {error}; retry in {args.retry_delay_ms} ms", flush=True)
            retried += 1
            channel.basic_reject(method.delivery_tag, requeue=False)  # -> pdf.retry -> pdf.retry.5s
        else:
            print(f"job {job['job_id']} attempt {attempt}: {error}; parked", flush=True)
            headers = dict(properties.headers or {})
            headers["x-parked-error"] = str(error)
            headers["x-parked-attempts"] = attempt
            properties.headers = headers
            channel.basic_publish("", topology.PARKING_LOT, body, properties)  # waits for the confirm
            channel.basic_ack(method.delivery_tag)
            parked += 1
    else:
        print(f"job {job['job_id']} attempt {attempt}: rendered {png}", flush=True)
        channel.basic_ack(method.delivery_tag)
        rendered += 1
    if args.count and rendered + parked >= args.count:
        break

channel.cancel()
connection.close()
print(f"rendered={rendered} parked={parked} retries={retried}", flush=True)
