"""Memory that the host backs only when the guest first touches it.

A virtual machine (Firecracker's, this project's CI and benchmark machines) gets each page of its
memory from the host on the page's first use, at about 0.33 GB/s here against 2.4 GB/s once
touched, and its balloon driver's free page reporting hands freed memory back to the host (in
blocks of 2^page_reporting_order pages), so that it is slow to touch again. Every new page-cache
page a broker writes into and every new buffer it grows can then cost several times its normal
price, and a benchmark measures which broker met fresh memory (stream-publish-1k without fsync:
266,484 msg/s at 3.8 µs a message, 72 % of it copy_folio_from_iter_atomic, against 1,181,617 at
0.80 with the memory held). probe() tells whether new memory is slow; hold() stops the reporting
(root only; release() restores it) and touches the free memory once.
"""
import mmap
import time

PAGE = 4096
GIB = 1 << 30


def touch(nbytes):
    """Seconds to write one byte into each page of nbytes of new anonymous memory."""
    m = mmap.mmap(-1, nbytes)
    try:
        start = time.perf_counter()
        for offset in range(0, nbytes, PAGE):
            m[offset] = 1
        return time.perf_counter() - start
    finally:
        m.close()


def probe(nbytes=256 << 20):
    """GB/s at which new anonymous memory is touched (above 1: the memory is backed already)."""
    return nbytes / touch(nbytes) / 1e9


def available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


REPORTING_ORDER = "/sys/module/page_reporting/parameters/page_reporting_order"
NEVER_REPORTED = 11  # above the largest block the page allocator has (order 10): nothing is reported


def hold(log=print):
    """Stops free page reporting and touches the free memory; returns what release() restores."""
    before = None
    try:
        with open(REPORTING_ORDER) as f:
            before = f.read().strip()
        with open(REPORTING_ORDER, "w") as f:
            f.write(str(NEVER_REPORTED))
        log(f"compare: free page reporting stopped for the run (page_reporting_order {before} -> {NEVER_REPORTED})")
    except OSError as e:
        if before is not None:
            log(f"compare: WARNING: cannot stop free page reporting ({e}); freed memory stays slow to touch again")
        before = None
    prefault(log=log)
    return before


def release(before, log=print):
    if before is None:
        return
    try:
        with open(REPORTING_ORDER, "w") as f:
            f.write(before)
    except OSError as e:
        log(f"compare: WARNING: could not restore page_reporting_order {before}: {e}")


def prefault(leave=2 * GIB, log=print):
    """Touches the available memory but `leave`, a GiB at a time (each freed before the next)."""
    total = max(0, available_bytes() - leave) // GIB
    start = time.perf_counter()
    for _ in range(total):
        touch(GIB)
    seconds = time.perf_counter() - start
    log(f"compare: touched {total} GiB of free memory once in {seconds:.1f} s (--prefault)")
