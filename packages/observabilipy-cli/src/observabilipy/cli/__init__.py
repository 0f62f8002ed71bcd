"""observabilipy-cli: the ``observabilipy`` command.

- ``observabilipy tail URL``: an application's logs, ``--follow`` to keep polling;
- ``observabilipy metrics URL``: its current metrics as a table, ``--watch`` to refresh;
- ``observabilipy query DB_PATH``: logs or metrics straight from a SQLite file, read-only;
- ``observabilipy serve DB_PATH``: the HTTP API over a SQLite file, on loopback;
- ``observabilipy top URL``: live metrics and logs in the terminal (extra ``tui``).

The modules behind it can be used from Python too: :mod:`.client` reads the
HTTP API, :mod:`.exposition` parses Prometheus text, :mod:`.query` builds
the SQL ``query`` runs, :mod:`.serve` serves an ``ObservabilityAPI`` with the
standard library.

>>> from observabilipy.cli.query import log_query
>>> log_query(level="error", limit=10)[0]
'SELECT id, timestamp, level, message, attributes FROM logs WHERE level = :level0 ORDER BY id LIMIT :limit'
"""
