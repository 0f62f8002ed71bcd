"""Query parameters of the HTTP API: parsed and checked once, for every adapter.

Rules (the same answer in every framework):

- the query string is percent-decoded (``+`` is a space) and must be UTF-8;
  a bad ``%`` escape or invalid UTF-8 refuses the whole request, naming ``query``;
- unknown parameters are ignored (cache busters such as ``_=1700000000`` pass);
- an empty value (``level=``, as an HTML form sends) means the parameter is not given;
- a known parameter given twice is refused: which one was meant is a guess;
- ``since`` is a Unix time in seconds (finite, >= 0; exclusive), ``after`` an
  entry id (the cursor), ``limit`` at most the API's ``max_limit``, ``offset``
  any whole number; ``level`` keeps one level, ``min_level`` that level and more
  severe ones (any case, ``WARN`` for ``WARNING``); ``q`` keeps log entries whose
  message holds the text, ignoring case; ``name`` keeps one metric family.

Every refusal is an :class:`ParameterError` naming the parameter and what is allowed.

>>> params = parse_query(b"level=warn&limit=50&q=disk+full&_=17")
>>> query = parse_log_query(params, default_limit=1000, max_limit=10_000)
>>> query.level, query.limit, query.q
('WARNING', 50, 'disk full')
>>> parse_log_query(parse_query(b"since=abc"), default_limit=1000, max_limit=10_000)
Traceback (most recent call last):
...
observabilipy.core.http.params.ParameterError: since: 'abc' is not a Unix time in seconds
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

from observabilipy.core.errors import ValidationError
from observabilipy.core.levels import normalize_level
from observabilipy.core.models import METRIC_NAME_RE

__all__ = [
    "ParameterError",
    "LogQuery",
    "MetricsQuery",
    "parse_log_query",
    "parse_metrics_query",
    "parse_query",
]

# Storages keep ids in 64-bit integers (SQLite); a larger number could only overflow there.
MAX_INTEGER: Final = 2**63 - 1

# ASCII only: float() and int() would also read Arabic or full-width digits, "nan", "1_0".
_DECIMAL_RE: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_INTEGER_RE: Final = re.compile(r"[0-9]{1,19}\Z")
_BAD_ESCAPE_RE: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")

_ALLOWED_SINCE: Final = "a Unix time in seconds: a finite number >= 0, such as 1700000000.5"
_ALLOWED_LEVEL: Final = "one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL, in any case"
_ALLOWED_NAME: Final = (
    "a metric name: letters, digits, '_' and ':', not starting with a digit, such as http_requests"
)


class ParameterError(ValidationError):
    """A query parameter was refused: the HTTP API answers 400 with :meth:`to_json`.

    ``field`` (and ``parameter``) name it; ``allowed`` says what would be accepted.

    >>> error = ParameterError("limit", "-1 is not a whole number", allowed="0 to 10000")
    >>> error.to_json()["parameter"], error.to_json()["allowed"]
    ('limit', '0 to 10000')
    """

    def __init__(self, parameter: str, problem: str, *, allowed: str) -> None:
        super().__init__(parameter, problem)
        self.parameter = parameter
        self.allowed = allowed

    def to_json(self) -> dict[str, str]:
        """The body of the 400 response."""
        return {
            "error": "invalid_parameter",
            "parameter": self.parameter,
            "message": str(self),
            "allowed": self.allowed,
        }


def parse_query(query_string: bytes) -> dict[str, list[str]]:
    """Decode a raw query string into parameter name -> values, in order.

    Raises :class:`ParameterError` naming ``query`` for a bad ``%`` escape or
    text that is not UTF-8 once decoded.

    >>> parse_query(b"q=caf%C3%A9+au+lait&level=&q=x")
    {'q': ['café au lait', 'x'], 'level': ['']}
    >>> parse_query(b"q=%FF")
    Traceback (most recent call last):
    ...
    observabilipy.core.http.params.ParameterError: query: is not valid UTF-8 once percent-decoded
    """
    params: dict[str, list[str]] = {}
    if not query_string:
        return params
    if _BAD_ESCAPE_RE.search(query_string):
        raise ParameterError(
            "query",
            "holds a '%' not followed by two hex digits",
            allowed="percent-encoded UTF-8, such as q=caf%C3%A9",
        )
    for pair in query_string.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        try:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode()
            value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode()
        except UnicodeDecodeError:
            raise ParameterError(
                "query",
                "is not valid UTF-8 once percent-decoded",
                allowed="percent-encoded UTF-8, such as q=caf%C3%A9",
            ) from None
        params.setdefault(name, []).append(value)
    return params


@dataclass(frozen=True, slots=True)
class LogQuery:
    """What ``/logs`` and ``/logs/json`` were asked for (levels canonical).

    ``carry`` holds the given parameters (as sent) that the next page repeats:
    all but ``after`` and ``offset``.
    """

    since: float | None = None
    after: int | None = None
    level: str | None = None
    min_level: str | None = None
    q: str | None = None
    limit: int = 1000
    offset: int = 0
    carry: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MetricsQuery:
    """What ``/metrics`` and ``/metrics/json`` were asked for; ``carry`` as in :class:`LogQuery`."""

    since: float | None = None
    after: int | None = None
    name: str | None = None
    limit: int = 1000
    offset: int = 0
    carry: tuple[tuple[str, str], ...] = ()


def parse_log_query(
    params: Mapping[str, list[str]], *, default_limit: int, max_limit: int
) -> LogQuery:
    """Check the parameters of a log read (see the module docstring for the rules).

    >>> query = parse_log_query(parse_query(b"min_level=Error&after=41"), default_limit=100, max_limit=500)
    >>> query.min_level, query.after, query.limit, query.carry
    ('ERROR', 41, 100, (('min_level', 'Error'),))
    """
    values = _given(params, ("since", "after", "level", "min_level", "q", "limit", "offset"))
    return LogQuery(
        since=_since(values.get("since")),
        after=_integer(values, "after", "an entry id: a whole number >= 0"),
        level=_level(values, "level"),
        min_level=_level(values, "min_level"),
        q=values.get("q"),
        limit=_limit(values, default_limit, max_limit),
        offset=_integer(values, "offset", "a whole number >= 0") or 0,
        carry=_carry(values),
    )


def parse_metrics_query(
    params: Mapping[str, list[str]], *, default_limit: int, max_limit: int
) -> MetricsQuery:
    """Check the parameters of a metrics history read.

    >>> parse_metrics_query(parse_query(b"name=http_requests"), default_limit=10, max_limit=10).name
    'http_requests'
    >>> parse_metrics_query(parse_query(b"name=bad+name"), default_limit=10, max_limit=10)
    Traceback (most recent call last):
    ...
    observabilipy.core.http.params.ParameterError: name: 'bad name' is not a metric name
    """
    values = _given(params, ("since", "after", "name", "limit", "offset"))
    name = values.get("name")
    if name is not None and not METRIC_NAME_RE.match(name):
        raise ParameterError("name", f"{_shown(name)} is not a metric name", allowed=_ALLOWED_NAME)
    return MetricsQuery(
        since=_since(values.get("since")),
        after=_integer(values, "after", "a sample id: a whole number >= 0"),
        name=name,
        limit=_limit(values, default_limit, max_limit),
        offset=_integer(values, "offset", "a whole number >= 0") or 0,
        carry=_carry(values),
    )


def _given(params: Mapping[str, list[str]], known: tuple[str, ...]) -> dict[str, str]:
    """The known parameters that carry a value, each given once, in ``known`` order."""
    values: dict[str, str] = {}
    for name in known:
        given = [value for value in params.get(name, ()) if value]
        if len(given) > 1:
            raise ParameterError(
                name, f"is given {len(given)} times", allowed=f"{name} at most once"
            )
        if given:
            values[name] = given[0]
    return values


def _carry(values: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What the next page repeats: all but the cursor and the offset (the next page
    starts after this one's last item)."""
    return tuple((name, value) for name, value in values.items() if name not in ("after", "offset"))


def _shown(value: str) -> str:
    """``value`` quoted for an error message, cut short: the text comes from the client."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    if not _DECIMAL_RE.match(value):
        raise ParameterError(
            "since", f"{_shown(value)} is not a Unix time in seconds", allowed=_ALLOWED_SINCE
        )
    number = float(value)
    if not math.isfinite(number):  # 1e999
        raise ParameterError("since", f"{_shown(value)} is not finite", allowed=_ALLOWED_SINCE)
    return number


def _integer(values: dict[str, str], name: str, allowed: str) -> int | None:
    value = values.get(name)
    if value is None:
        return None
    if not _INTEGER_RE.match(value) or int(value) > MAX_INTEGER:
        raise ParameterError(
            name, f"{_shown(value)} is not a whole number from 0 to {MAX_INTEGER}", allowed=allowed
        )
    return int(value)


def _limit(values: dict[str, str], default: int, maximum: int) -> int:
    allowed = f"a whole number from 0 to {maximum}; fetch more with the next page's after"
    limit = _integer(values, "limit", allowed)
    if limit is None:
        return default
    if limit > maximum:
        raise ParameterError("limit", f"{limit} is above the maximum {maximum}", allowed=allowed)
    return limit


def _level(values: dict[str, str], name: str) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    try:
        return normalize_level(value, field=name)
    except ValidationError:
        raise ParameterError(
            name, f"{_shown(value)} is not a level", allowed=_ALLOWED_LEVEL
        ) from None
