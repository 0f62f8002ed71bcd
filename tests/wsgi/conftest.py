"""Makes the helpers next to these tests importable (``from _wsgi_support import ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# Loaded by the servers the tests start, not test modules (no doctests to collect).
collect_ignore = ["_wsgi_server_apps.py", "_wsgi_gunicorn_conf.py"]
