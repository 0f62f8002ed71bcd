"""Ring-buffer storage: the most recent logs in a fixed amount of memory.

A busy process logs far more than anyone reads; a ring buffer keeps the last
``max_size`` entries and drops the oldest, so memory never grows.  Ids keep
increasing across evictions, so a poller's ``after=`` cursor stays valid and
:attr:`evicted` tells how much it missed.

    python examples/ring_buffer.py
"""

from __future__ import annotations

import logging

from observabilipy.core import ObservabilipyHandler, RingBufferLogStorage

ring = RingBufferLogStorage(max_size=5)
handler = ObservabilipyHandler(ring)
logger = logging.getLogger("worker")
logger.setLevel(logging.INFO)
logger.addHandler(handler)
logger.propagate = False


def main() -> None:
    """Log 12 jobs into a ring of 5, then read and poll what is left."""
    for job in range(1, 13):
        level = logging.WARNING if job % 4 == 0 else logging.INFO
        logger.log(level, "job %d done", job, extra={"job": job})
    handler.flush()

    print(f"kept {ring.count_sync()} of 12 entries, evicted {ring.evicted}:")
    for entry in ring.read_sync():
        print(f"  #{entry.id} {entry.level:<7} {entry.message}")
    warnings = [entry.message for entry in ring.read_sync(min_level="warn")]  # WARN = WARNING
    print(f"warnings still held: {warnings}")

    cursor = max(entry.id for entry in ring.read_sync() if entry.id is not None)
    logger.info("job 13 done", extra={"job": 13})
    handler.flush()
    print(f"new since id {cursor}: {[entry.message for entry in ring.read_sync(after=cursor)]}")
    handler.close()


if __name__ == "__main__":
    main()
