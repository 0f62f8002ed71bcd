"""Standard-library logging into SQLite through ObservabilipyHandler.

The application keeps using ``logging``; the handler queues each record and a
background thread writes batches to storage, so ``logger.info`` never waits
for the disk and never raises into the caller.  ``extra=`` fields become
attributes, exceptions carry their type, message and traceback, the log
context follows the record.  ``flush()`` waits for the queue; ``close()`` flushes
and stops the writer (the storage is closed by whoever opened it).

    python examples/logging_handler.py [path]

Needs ``pip install observabilipy-sqlite``.
"""

from __future__ import annotations

import logging
import sys

from observabilipy.core import ObservabilipyHandler, log_context
from observabilipy.sqlite import SQLiteLogStorage


def main(path: str) -> None:
    """Log a few records, one with an exception, then read them back from the file."""
    storage = SQLiteLogStorage(path)
    storage.clear_sync()  # a fresh start when the example runs again on the same file
    handler = ObservabilipyHandler(storage, exclude={"pathname", "process", "threadName"})
    logger = logging.getLogger("billing")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False  # only our handler: nothing printed to stderr

    logger.debug("not stored: below the logger's level")
    logger.info("invoice created", extra={"invoice": 1017, "amount": 49.9})
    with log_context(customer="c-88"):
        logger.warning("card expires soon", extra={"months_left": 1})
        try:
            1 / 0  # noqa: B018 - the failure the example logs
        except ZeroDivisionError:
            logger.exception("tax computation failed")
    handler.flush()  # wait until the queued records are in storage

    for entry in storage.read_sync():
        attributes = entry.attributes
        print(f"{entry.level:<7} {entry.message} (logger={attributes['logger']})")
        extra = {k: v for k, v in attributes.items() if k in ("invoice", "months_left", "customer")}
        if extra:
            print(f"        {extra}")
        if "exception.type" in attributes:
            traceback_lines = str(attributes["exception.traceback"]).strip().splitlines()
            print(f"        exception.type={attributes['exception.type']}")
            print(f"        traceback ends: {traceback_lines[-1]}")
    print(f"stored {storage.count_sync()} entries, dropped {handler.dropped}")

    logger.removeHandler(handler)
    handler.close()
    storage.close_sync()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "logging-example.db")
