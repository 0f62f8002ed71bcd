"""The one error the commands raise: a message for the user, printed on one line.

:class:`CLIError` is a :class:`click.ClickException`: the command line prints
``Error: <message>`` on stderr and exits 1, never a traceback.

>>> str(CLIError("cannot reach http://127.0.0.1:1/: connection refused"))
'cannot reach http://127.0.0.1:1/: connection refused'
"""

from __future__ import annotations

import click

__all__ = ["CLIError"]


class CLIError(click.ClickException):
    """Something the user can fix (a bad URL, a missing file): one line, exit status 1."""
