"""The Celery app that test_celery's workers run (`python3 -m celery -A celery_tasks worker`).

Tasks leave their evidence as files in CELERY_MARK_DIR: which worker ran them and when they
started and ended, relative to each other. The test waits for those files, never for time.
The settings are those of a fair-dispatch Celery deployment: ack after the task (acks_late)
and prefetch one task per process.
"""
import os
import time

from celery import Celery

app = Celery("celery_tasks")
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,  # the files are the results: no result backend, no server
    worker_hijack_root_logger=False,
)

HOLD_LIMIT = 30.0  # a held task gives up after this, so a failing test still ends


def _mark_dir():
    return os.environ["CELERY_MARK_DIR"]


def mark(name, text):
    """Writes MARK_DIR/name atomically: a reader sees the whole file or none."""
    path = os.path.join(_mark_dir(), name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


@app.task(bind=True)
def record(self, name):
    """Records which worker ran it; a later check of other marks orders it against them."""
    mark(name, self.request.hostname)


@app.task(bind=True)
def hold(self, name):
    """Keeps its worker busy until the test creates MARK_DIR/release (or HOLD_LIMIT passes)."""
    mark(name + ".started", self.request.hostname)
    release = os.path.join(_mark_dir(), "release")
    deadline = time.monotonic() + HOLD_LIMIT
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)  # the workload being simulated, not the test waiting
    mark(name + ".done", self.request.hostname)
