"""The error observabilipy-sqlite raises when a database file cannot be used.

Opening a file that is not a SQLite database, is corrupt, or holds a schema
newer than this version understands raises :class:`SQLiteStorageError` naming
the file, at open, so a misconfigured path fails at start-up and never later.
Failures while the application runs (a full disk, a read-only file) are not
raised: the writer counts and drops what it cannot store (see
:mod:`observabilipy.sqlite.database`).

>>> from observabilipy.core.errors import ObservabilityError
>>> issubclass(SQLiteStorageError, ObservabilityError)
True
>>> str(SQLiteStorageError("obs.db", "not a SQLite database"))
'obs.db: not a SQLite database'
"""

from __future__ import annotations

from observabilipy.core.errors import ObservabilityError


class SQLiteStorageError(ObservabilityError):
    """A SQLite database file cannot be opened or used; ``path`` names it.

    >>> error = SQLiteStorageError("/var/lib/app/obs.db", "schema version 9 is newer than 1")
    >>> error.path, error.problem
    ('/var/lib/app/obs.db', 'schema version 9 is newer than 1')
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
