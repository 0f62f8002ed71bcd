"""The log context: fields every log entry made in this scope carries.

The context lives in a :class:`contextvars.ContextVar`, so each thread and each
asyncio task sees its own: a request handled in one task never leaks its
``request_id`` into another.  It is copy-on-write: every change builds a new
dict and sets it, so a dict once set is never modified and readers need no lock.

Values are stored the way log attributes are (JSON scalars; other objects as
their text, see :func:`observabilipy.core.models.normalize_attribute`), once,
when they enter the context, not at every log call.

>>> with log_context(request_id="r-1"):
...     with log_context(user="ada"):
...         print(get_log_context())
...     print(get_log_context())
{'request_id': 'r-1', 'user': 'ada'}
{'request_id': 'r-1'}
>>> get_log_context()
{}
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, TypeAlias, TypeVar, cast

from observabilipy.core.models import AttributeValue, normalize_attributes

__all__ = [
    "ContextProvider",
    "LogContext",
    "clear_log_context",
    "current_log_context",
    "get_log_context",
    "log_context",
    "reset_log_context",
    "set_log_context",
    "update_log_context",
]

#: A callable that returns extra fields for a log record, such as the trace and
#: span ids of a tracing library.  The logging handler calls it for each record.
ContextProvider: TypeAlias = Callable[[], Mapping[str, object]]

_F = TypeVar("_F", bound=Callable[..., Any])

# Read-only by convention: never mutated, only replaced.  Shared by every thread
# and task that has not set a context of its own.
_EMPTY: dict[str, AttributeValue] = {}
_LOG_CONTEXT: ContextVar[dict[str, AttributeValue]] = ContextVar(
    "observabilipy_log_context", default=_EMPTY
)


def current_log_context() -> Mapping[str, AttributeValue]:
    """The live context of this thread or task, without copying it.

    For hot paths such as the logging handler.  Treat it as read-only: it may be
    shared with other tasks, and changing it in place would change their logs
    too.  Use :func:`get_log_context` for a copy you may change.

    >>> with log_context(job="mail"):
    ...     current_log_context()["job"]
    'mail'
    """
    return _LOG_CONTEXT.get()


def get_log_context() -> dict[str, object]:
    """A copy of the current context; changing it does not change the context.

    Usable as a :data:`ContextProvider`.

    >>> with log_context(tenant="acme"):
    ...     fields = get_log_context()
    >>> fields["tenant"] = "other"
    >>> fields, get_log_context()
    ({'tenant': 'other'}, {})
    """
    return dict(_LOG_CONTEXT.get())


def set_log_context(
    fields: Mapping[str, object] | None = None, /, **more_fields: object
) -> Token[dict[str, AttributeValue]]:
    """Replace the whole context; return the token that undoes it.

    Takes a mapping, keyword fields or both (keywords win).  Prefer
    :func:`log_context` or :func:`update_log_context`, which keep the fields
    already there; this is for code that owns the context, such as a worker
    loop starting a fresh job.

    >>> token = set_log_context({"job": "mail"}, attempt=2)
    >>> get_log_context()
    {'job': 'mail', 'attempt': 2}
    >>> reset_log_context(token)
    >>> get_log_context()
    {}
    """
    new = normalize_attributes(fields, field="log_context") if fields is not None else {}
    if more_fields:
        new.update(normalize_attributes(more_fields, field="log_context"))
    return _LOG_CONTEXT.set(new)


def update_log_context(**fields: object) -> Token[dict[str, AttributeValue]]:
    """Merge ``fields`` into the current context; return the token that undoes it.

    >>> outer = update_log_context(service="api")
    >>> inner = update_log_context(user="ada")
    >>> get_log_context()
    {'service': 'api', 'user': 'ada'}
    >>> reset_log_context(inner)
    >>> get_log_context()
    {'service': 'api'}
    >>> reset_log_context(outer)
    """
    return _LOG_CONTEXT.set(_merged(normalize_attributes(fields, field="log_context")))


def clear_log_context() -> None:
    """Empty the context of this thread or task.

    >>> _ = update_log_context(user="ada")
    >>> clear_log_context()
    >>> get_log_context()
    {}
    """
    _LOG_CONTEXT.set(_EMPTY)


def reset_log_context(token: Token[dict[str, AttributeValue]]) -> None:
    """Restore the context as it was before the change that returned ``token``.

    A token works once, in the thread or task that made it.

    >>> token = update_log_context(step="load")
    >>> reset_log_context(token)
    >>> get_log_context()
    {}
    """
    _LOG_CONTEXT.reset(token)


def log_context(**fields: object) -> LogContext:
    """Add ``fields`` to the context for a block, then restore the outer context.

    Use it as ``with log_context(...):`` (also inside async code),
    ``async with log_context(...):`` or as a decorator of sync and async
    functions.  The fields are merged into what is already there, never
    replacing it, and the outer context comes back on exit, exception or not.

    >>> with log_context(request_id="r-7"):
    ...     try:
    ...         with log_context(step="parse"):
    ...             raise ValueError("bad input")
    ...     except ValueError:
    ...         print(get_log_context())
    {'request_id': 'r-7'}
    >>> @log_context(job="cleanup")
    ... def run() -> dict[str, object]:
    ...     return get_log_context()
    >>> run()
    {'job': 'cleanup'}
    """
    return LogContext(normalize_attributes(fields, field="log_context"))


class LogContext:
    """What :func:`log_context` returns: a context manager and decorator.

    As a decorator each call sets and restores the context on its own, so one
    decorated function may run in many threads and tasks at once.
    """

    __slots__ = ("_fields", "_tokens")

    def __init__(self, fields: dict[str, AttributeValue]) -> None:
        """Hold ``fields``, already normalised; prefer :func:`log_context`."""
        self._fields = fields
        # A stack, so one instance may be entered again while already entered.
        self._tokens: list[Token[dict[str, AttributeValue]]] = []

    def __enter__(self) -> None:
        """Merge the fields into the current context."""
        self._tokens.append(_LOG_CONTEXT.set(_merged(self._fields)))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Restore the context as it was on entry; exceptions propagate."""
        _LOG_CONTEXT.reset(self._tokens.pop())

    async def __aenter__(self) -> None:
        """As :meth:`__enter__`, for ``async with``."""
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """As :meth:`__exit__`, for ``async with``."""
        self.__exit__(exc_type, exc, traceback)

    def __call__(self, func: _F) -> _F:
        """Decorate ``func`` so that each call runs with the fields in its context."""
        fields = self._fields
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = _LOG_CONTEXT.set(_merged(fields))
                try:
                    return await func(*args, **kwargs)
                finally:
                    _LOG_CONTEXT.reset(token)

            return cast(_F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _LOG_CONTEXT.set(_merged(fields))
            try:
                return func(*args, **kwargs)
            finally:
                _LOG_CONTEXT.reset(token)

        return cast(_F, wrapper)

    def __repr__(self) -> str:
        """Show the fields, as ``log_context(...)`` would take them."""
        inner = ", ".join(f"{key}={value!r}" for key, value in self._fields.items())
        return f"log_context({inner})"


def _merged(fields: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    """The current context with ``fields`` on top (``fields`` itself when empty)."""
    current = _LOG_CONTEXT.get()
    # Sharing ``fields`` is safe: no dict set in the context is ever changed.
    return {**current, **fields} if current else fields
