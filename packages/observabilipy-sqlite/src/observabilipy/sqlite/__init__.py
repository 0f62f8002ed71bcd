"""observabilipy-sqlite: fast, crash-safe SQLite storage for logs and metrics.

One file holds both; any number of threads, event loops and worker processes
share it.  Writes are queued and committed in batches by one writer thread per
process; reads stream with constant memory; several processes writing one
file expose one truth (counters summed, never going down across restarts).

>>> from observabilipy.core import info
>>> from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage
>>> db = SQLiteDatabase(":memory:")
>>> logs, metrics = SQLiteLogStorage(db), SQLiteMetricsStorage(db)
>>> logs.write_sync(info("started"))
>>> [entry.message for entry in logs.read_sync()]
['started']
>>> db.close()
"""

from __future__ import annotations

from observabilipy.sqlite.database import SQLiteDatabase
from observabilipy.sqlite.errors import SQLiteStorageError
from observabilipy.sqlite.logs import SQLiteLogStorage
from observabilipy.sqlite.metrics import SQLiteMetricsStorage
from observabilipy.sqlite.multiprocess import encode_exposition
from observabilipy.sqlite.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "SQLiteDatabase",
    "SQLiteLogStorage",
    "SQLiteMetricsStorage",
    "SQLiteStorageError",
    "encode_exposition",
]
