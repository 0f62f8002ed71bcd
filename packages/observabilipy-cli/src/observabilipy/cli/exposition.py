"""A small parser of the Prometheus text format (0.0.4) and OpenMetrics 1.0.

``observabilipy metrics`` and ``top`` read ``/metrics/prometheus`` with it.
It keeps what a table shows: each sample's name, labels, value and its
family's type and help; sample timestamps and exemplars are skipped.  A line
that is neither a comment nor a sample raises :class:`ExpositionError` naming
it: an HTML page or a JSON document is refused at its first line.

>>> text = '''# HELP jobs_total Jobs run.
... # TYPE jobs_total counter
... jobs_total{queue="mail",note="a \\\\"b\\\\""} 3.0
... # TYPE latency_seconds histogram
... latency_seconds_bucket{le="+Inf"} 2
... latency_seconds_count 2
... '''
>>> for sample in parse_exposition(text):
...     print(sample.name, sample.labels, sample.value, sample.type)
jobs_total {'queue': 'mail', 'note': 'a "b"'} 3.0 counter
latency_seconds_bucket {'le': '+Inf'} 2.0 histogram
latency_seconds_count {} 2.0 histogram
>>> parse_exposition("<!DOCTYPE html>")
Traceback (most recent call last):
...
observabilipy.cli.exposition.ExpositionError: line 1 is not in the Prometheus text format: '<!DOCTYPE html>'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Final

__all__ = [
    "ExpositionError",
    "Sample",
    "filter_samples",
    "format_labels",
    "format_value",
    "parse_exposition",
]

_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE: Final = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,?)')
_ESCAPES: Final = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
_ESCAPE_RE: Final = re.compile(r"\\[\\\"n]")
# Sample names a family's samples may carry beyond the family name.
_SUFFIXES: Final = ("_total", "_bucket", "_count", "_sum", "_created", "_info", "_gcount", "_gsum")
_SPECIAL: Final = {"+inf": math.inf, "inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class ExpositionError(ValueError):
    """The text is not in the Prometheus text format: names the first bad line."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One exposed sample: its name, labels, value, and its family's type and help.

    >>> Sample("up", {"job": "api"}, 1.0, "gauge").key
    'up{job="api"}'
    """

    name: str
    labels: dict[str, str]
    value: float
    type: str = "untyped"
    help: str = field(default="", compare=False)
    #: The family the sample belongs to (``latency_seconds`` for ``latency_seconds_bucket``).
    family: str = ""

    @property
    def key(self) -> str:
        """The series as Prometheus writes it: ``name{labels}``."""
        return self.name + format_labels(self.labels)


def parse_exposition(text: str) -> list[Sample]:
    """The samples of ``text``, in order; :class:`ExpositionError` names the first bad line.

    >>> [s.value for s in parse_exposition("a NaN\\nb +Inf 1700000000\\n# EOF\\n")]
    [nan, inf]
    """
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    samples: list[Sample] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip() if len(parts) > 3 else "untyped"
            elif len(parts) >= 3 and parts[1] == "HELP":
                helps[parts[2]] = _unescape(parts[3]) if len(parts) > 3 else ""
            continue
        sample = _sample(line)
        if sample is None:
            shown = raw if len(raw) <= 60 else raw[:60] + "..."
            raise ExpositionError(f"line {number} is not in the Prometheus text format: {shown!r}")
        name, labels, value = sample
        family = _family(name, types)
        samples.append(
            Sample(name, labels, value, types.get(family, "untyped"), helps.get(family, ""), family)
        )
    return samples


def _sample(line: str) -> tuple[str, dict[str, str], float] | None:
    """(name, labels, value) of a sample line, or None when it is not one."""
    match = _NAME_RE.match(line)
    if match is None:
        return None
    name = match.group()
    rest = line[match.end() :]
    labels: dict[str, str] = {}
    if rest.startswith("{"):
        position = 1
        while True:
            label = _LABEL_RE.match(rest, position)
            if label is None:
                break
            labels[label.group(1)] = _unescape(label.group(2))
            position = label.end()
            if not label.group(3):
                break
        closing = rest.find("}", position)
        if closing < 0 or rest[position:closing].strip():
            return None
        rest = rest[closing + 1 :]
    if rest and not rest[0].isspace():
        return None
    # value [timestamp] [# exemplar]: only the value is kept.
    fields = rest.split("#", 1)[0].split()
    if not 1 <= len(fields) <= 2:
        return None
    value = _number(fields[0])
    if value is None:
        return None
    return name, labels, value


def _number(text: str) -> float | None:
    special = _SPECIAL.get(text.lower())
    if special is not None:
        return special
    try:
        return float(text)
    except ValueError:
        return None


def _family(name: str, types: dict[str, str]) -> str:
    """The family a sample name belongs to (``x_bucket`` to ``x`` when ``x`` is typed)."""
    if name in types:
        return name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in types:
            return name[: -len(suffix)]
    return name


def _unescape(text: str) -> str:
    return _ESCAPE_RE.sub(lambda match: _ESCAPES[match.group()], text)


def format_labels(labels: dict[str, str]) -> str:
    """Labels as Prometheus writes them, escaped; empty for none.

    >>> format_labels({"route": "/users/{id}", "msg": 'say "hi"'})
    '{route="/users/{id}",msg="say \\\\"hi\\\\""}'
    >>> format_labels({})
    ''
    """
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value for a table: whole numbers without ``.0``, others as Python prints them.

    >>> format_value(3.0), format_value(0.25), format_value(float("inf")), format_value(1e21)
    ('3', '0.25', '+Inf', '1e+21')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def filter_samples(samples: Iterable[Sample], filters: Sequence[str]) -> list[Sample]:
    """The samples ``--filter`` keeps: any of the names given, and every ``label=value``.

    A name matches the sample's name or its family's; names and label values
    may use shell wildcards (``http_*``).

    >>> samples = [
    ...     Sample("http_requests_total", {"route": "/users/{id}"}, 3.0, family="http_requests"),
    ...     Sample("http_requests_total", {"route": "/"}, 1.0, family="http_requests"),
    ...     Sample("up", {}, 1.0, family="up"),
    ... ]
    >>> [s.value for s in filter_samples(samples, ["http_requests"])]
    [3.0, 1.0]
    >>> [s.key for s in filter_samples(samples, ["route=/users/{id}"])]
    ['http_requests_total{route="/users/{id}"}']
    >>> [s.name for s in filter_samples(samples, ["up", "http_*", "route=/"])]
    ['http_requests_total']
    """
    names = [f for f in filters if "=" not in f]
    labels = [f.partition("=")[::2] for f in filters if "=" in f]
    return [
        sample
        for sample in samples
        if (
            not names
            or any(fnmatchcase(sample.name, n) or fnmatchcase(sample.family, n) for n in names)
        )
        and all(
            name.strip() in sample.labels and fnmatchcase(sample.labels[name.strip()], value)
            for name, value in labels
        )
    ]
