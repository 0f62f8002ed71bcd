"""Column values to and from models, and NDJSON straight from query rows.

Writing: attributes become compact JSON text (``'{}'`` without a call when
empty), labels canonical JSON (sorted keys, compact separators), and each
series its pre-rendered exposition label text.  Reading: attribute text that
is not a JSON object comes back as ``{"_raw": text}``, never as an error.

NDJSON of metrics is assembled here from SQL-quoted text columns, the values
written with ``repr`` as core's encoder does (exact: SQLite's ``json_object()``
prints REAL values with 15 significant digits).  Log NDJSON is built whole by
``json_object()`` (see :mod:`observabilipy.sqlite.logs`).

>>> attributes_text({"user": "ada", "n": 2}), attributes_text({})
('{"user":"ada","n":2}', '{}')
>>> attributes_from_text('{"n":2}'), attributes_from_text("not json")
({'n': 2}, {'_raw': 'not json'})
>>> labels_text({"b": "2", "a": "1"})
'{"a":"1","b":"2"}'
>>> label_text({"path": "/", "le": "0.5", "code": "200"}, "histogram")
'code="200",path="/",le="0.5"'
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Final

from observabilipy.core.encoding import CHUNK_SIZE, _utf8
from observabilipy.core.metrics import _render_labels, format_float
from observabilipy.core.models import AttributeValue

__all__ = [
    "ATTRIBUTES_JSON_SQL",
    "attributes_from_text",
    "attributes_text",
    "chunks",
    "achunks",
    "label_text",
    "labels_from_text",
    "labels_text",
    "safe_text",
    "value_json",
]

# Same output as core's encoder: compact, UTF-8 kept.  default=str: a value of a
# type JSON lacks (a mutated attributes dict) is stored as text, never an error.
_encode_attributes = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, default=str
).encode


def _c_attributes_encoder() -> Callable[[Mapping[str, AttributeValue]], str] | None:
    """The C encoder behind JSONEncoder, called directly: 40% less per entry.

    JSONEncoder.encode() builds this encoder anew at every call; the writer
    encodes every stored entry's attributes, so it keeps one.  None when the C
    accelerator is missing or does not produce what JSONEncoder does.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encode = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)
        sample = {"é": 1.5, "n": None, "t": True, "big": 2**70, "s": 'a"\n', "o": object}

        def dump(attributes: Mapping[str, AttributeValue]) -> str:
            return "".join(encode(attributes, 0))

        if dump(sample) != _encode_attributes(sample):  # type: ignore[arg-type]
            return None
    except Exception:
        return None
    return dump


_dump_attributes = _c_attributes_encoder() or _encode_attributes

# Canonical label JSON: one text per label set, whoever writes it.
_dump_labels = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False).encode

_loads = json.loads

#: The stored attributes as a JSON value for json_object(): the object when the
#: text is one, ``{"_raw": text}`` otherwise (as :func:`attributes_from_text`).
#: json() only in the THEN branch: it raises on text that is not JSON.
ATTRIBUTES_JSON_SQL: Final = (
    "CASE WHEN substr(attributes, 1, 1) = '{' AND json_valid(attributes) "
    "THEN json(attributes) ELSE json_object('_raw', CAST(attributes AS TEXT)) END"
)

_NON_FINITE_JSON: Final = {float("inf"): '"+Inf"', float("-inf"): '"-Inf"'}


def attributes_text(attributes: Mapping[str, AttributeValue]) -> str:
    """The stored text of an entry's attributes.

    >>> attributes_text({"city": "Zürich"})
    '{"city":"Zürich"}'
    """
    return _dump_attributes(attributes) if attributes else "{}"


def attributes_from_text(text: object) -> dict[str, AttributeValue]:
    """An entry's attributes from their stored text; what is not a JSON object is kept raw.

    >>> attributes_from_text('[1, 2]'), attributes_from_text(7), attributes_from_text('{"a": ')
    ({'_raw': '[1, 2]'}, {'_raw': '7'}, {'_raw': '{"a": '})
    """
    if text == "{}":
        return {}
    if not isinstance(text, str):
        return {"_raw": str(text)}
    if not text.startswith("{"):  # the rule the SQL of NDJSON reads applies too
        return {"_raw": text}
    try:
        value = _loads(text)
    except ValueError:
        return {"_raw": text}
    return value if type(value) is dict else {"_raw": text}


def labels_text(labels: Mapping[str, str]) -> str:
    """Canonical JSON of a label set: sorted keys, compact separators.

    >>> labels_text({}), labels_text({"queue": "mail"})
    ('{}', '{"queue":"mail"}')
    """
    return _dump_labels(labels) if labels else "{}"


def labels_from_text(text: object) -> dict[str, str]:
    """A label set from its stored JSON (an empty one if the text is damaged).

    >>> labels_from_text('{"queue":"mail"}'), labels_from_text("oops")
    ({'queue': 'mail'}, {})
    """
    if text == "{}" or not isinstance(text, str):
        return {}
    try:
        value = _loads(text)
    except ValueError:
        return {}
    return value if type(value) is dict else {}


def _le_value(text: str) -> float:
    try:
        return float(text)  # float() reads "+Inf" too
    except ValueError:
        return float("nan")


def label_text(labels: Mapping[str, str], kind: str) -> str:
    """The inside of a series' braces as exposition writes it, escaped.

    Labels in sorted order; a histogram's ``le`` last, its bound written as
    Prometheus clients write it (``1`` becomes ``1.0``).  Text that UTF-8
    cannot hold (lone surrogates) is backslash-escaped.

    >>> label_text({"le": "1", "method": 'say "hi"'}, "histogram")
    'method="say \\\\"hi\\\\"",le="1.0"'
    >>> label_text({}, "counter")
    ''
    """
    if not labels:
        return ""
    if kind == "histogram" and "le" in labels:
        pairs = sorted((name, value) for name, value in labels.items() if name != "le")
        le = labels["le"]
        bound = _le_value(le)
        pairs.append(("le", le if bound != bound else format_float(bound)))
    else:
        pairs = sorted(labels.items())
    return safe_text(_render_labels(pairs))


def safe_text(text: str) -> str:
    """``text`` as SQLite can store it: lone surrogates become ``\\udcxx`` escapes.

    >>> safe_text("caf\\udce9")
    'caf\\\\udce9'
    """
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def value_json(value: float | None) -> str:
    """A stored metric value as JSON: NULL (NaN) and infinities as strings, as core does.

    >>> [value_json(v) for v in (None, float("inf"), 2.5)]
    ['"NaN"', '"+Inf"', '2.5']
    """
    if value is None or value != value:
        return '"NaN"'
    return _NON_FINITE_JSON.get(value) or repr(float(value))


def chunks(blocks: Iterable[str]) -> Iterator[bytes]:
    """Join text blocks into UTF-8 chunks of about 64 KiB (as core's encoders yield).

    >>> list(chunks(["a\\n", "b\\n"]))
    [b'a\\nb\\n']
    """
    parts: list[str] = []
    size = 0
    for block in blocks:
        parts.append(block)
        size += len(block)
        if size >= CHUNK_SIZE:
            yield _utf8("".join(parts))
            parts = []
            size = 0
    if parts:
        yield _utf8("".join(parts))


async def achunks(blocks: AsyncIterable[str]) -> AsyncIterator[bytes]:
    """Async twin of :func:`chunks`.

    >>> import asyncio
    >>> async def blocks():
    ...     yield "a\\n"
    >>> async def main():
    ...     return [chunk async for chunk in achunks(blocks())]
    >>> asyncio.run(main())
    [b'a\\n']
    """
    parts: list[str] = []
    size = 0
    async for block in blocks:
        parts.append(block)
        size += len(block)
        if size >= CHUNK_SIZE:
            yield _utf8("".join(parts))
            parts = []
            size = 0
    if parts:
        yield _utf8("".join(parts))
