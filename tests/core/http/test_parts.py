"""The HTTP API's parts on their own: query parsing, JSON pages, gzip, access checks, health."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import random
from collections.abc import AsyncIterator

import pytest

from observabilipy.core.encoding import encode_logs_ndjson
from observabilipy.core.errors import ConfigurationError, ValidationError
from observabilipy.core.http import ParameterError, Request, basic_auth, bearer_token
from observabilipy.core.http.compression import accepts_gzip, agzip_chunks, gzip_bytes, gzip_chunks
from observabilipy.core.http.health import health, health_sync, wait_sync
from observabilipy.core.http.params import (
    MAX_INTEGER,
    parse_log_query,
    parse_metrics_query,
    parse_query,
)
from observabilipy.core.http.responses import ajson_document, json_document
from observabilipy.core.models import LogEntry

pytestmark = pytest.mark.core

# -- query strings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b"", {}),
        (b"a=1&&b=2&", {"a": ["1"], "b": ["2"]}),
        (b"flag", {"flag": [""]}),
        (b"=orphan", {"": ["orphan"]}),
        (b"q=a+b%2Bc", {"q": ["a b+c"]}),
        (b"q=a=b", {"q": ["a=b"]}),
        (b"q%5B%5D=1", {"q[]": ["1"]}),
        (b"q=%E2%9C%93&q=x", {"q": ["✓", "x"]}),
        (b"q=%3b;x=1", {"q": [";;x=1"]}),  # ';' separates nothing (WHATWG, Python >= 3.10)
    ],
)
def test_parse_query(raw: bytes, parsed: dict[str, list[str]]) -> None:
    assert parse_query(raw) == parsed


@pytest.mark.parametrize("raw", [b"q=%", b"q=%4", b"q=%G1", b"%zz=1", b"q=%ff", b"q=\xc3"])
def test_a_broken_query_names_query(raw: bytes) -> None:
    with pytest.raises(ParameterError) as caught:
        parse_query(raw)
    assert caught.value.parameter == "query"
    assert isinstance(caught.value, ValidationError)  # a ValueError naming its field


def _logs(raw: bytes, max_limit: int = 10_000) -> object:
    return parse_log_query(parse_query(raw), default_limit=100, max_limit=max_limit)


def test_the_log_query_keeps_what_was_asked() -> None:
    query = parse_log_query(
        parse_query(b"since=1.5e3&after=9&level=warn&min_level=INFO&q=x&limit=7&offset=2&z=1"),
        default_limit=100,
        max_limit=10,
    )
    assert (query.since, query.after, query.level, query.min_level) == (
        1500.0,
        9,
        "WARNING",
        "INFO",
    )
    assert (query.q, query.limit, query.offset) == ("x", 7, 2)
    # What the next page repeats: as sent, without the cursor and the offset.
    assert query.carry == (
        ("since", "1.5e3"),
        ("level", "warn"),
        ("min_level", "INFO"),
        ("q", "x"),
        ("limit", "7"),
    )


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"since=0", 0.0),
        (b"since=.5", 0.5),
        (b"since=7.", 7.0),
        (b"since=1700000000.25", 1700000000.25),
    ],
)
def test_since_accepts_plain_decimals(raw: bytes, value: float) -> None:
    assert parse_log_query(parse_query(raw), default_limit=1, max_limit=1).since == value


def test_the_largest_id_is_accepted_and_one_more_is_not() -> None:
    assert (
        parse_log_query(
            parse_query(f"after={MAX_INTEGER}".encode()), default_limit=1, max_limit=1
        ).after
        == MAX_INTEGER
    )
    with pytest.raises(ParameterError, match=r"^after: "):
        parse_log_query(
            parse_query(f"after={MAX_INTEGER + 1}".encode()), default_limit=1, max_limit=1
        )


def test_limit_is_bounded_by_the_maximum_given() -> None:
    assert parse_log_query(parse_query(b"limit=10"), default_limit=1, max_limit=10).limit == 10
    with pytest.raises(ParameterError, match="above the maximum 10"):
        parse_log_query(parse_query(b"limit=11"), default_limit=1, max_limit=10)


def test_a_long_bad_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(ParameterError) as caught:
        parse_log_query(parse_query(b"level=" + b"x" * 5000), default_limit=1, max_limit=1)
    assert len(str(caught.value)) < 200


def test_metrics_query_ignores_log_parameters() -> None:
    query = parse_metrics_query(
        parse_query(b"level=nonsense&q=x&name=up"), default_limit=5, max_limit=5
    )
    assert (query.name, query.limit, query.carry) == ("up", 5, (("name", "up"),))


# -- JSON pages built from NDJSON -----------------------------------------------------------


def _ndjson(count: int) -> bytes:
    entries = [
        LogEntry(timestamp=float(n), level="info", message=f"message {n} ✓ \n newline").with_id(
            n + 1
        )
        for n in range(count)
    ]
    return b"".join(encode_logs_ndjson(entries))


@pytest.mark.parametrize("count", [0, 1, 2, 50])
def test_a_json_page_is_the_same_however_the_ndjson_is_split(count: int) -> None:
    data = _ndjson(count)
    whole = b"".join(json_document([data], after=None, limit=count, carry=()))
    document = json.loads(whole)
    assert [item["id"] for item in document["items"]] == list(range(1, count + 1))
    assert document["count"] == count
    assert document["next_after"] == (count or None)
    rng = random.Random(count)
    for _ in range(20):
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data), 9)))
        parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert b"".join(json_document(parts, after=None, limit=count, carry=())) == whole
    one_byte_at_a_time = [data[n : n + 1] for n in range(len(data))]
    assert b"".join(json_document(one_byte_at_a_time, after=None, limit=count, carry=())) == whole


def test_a_json_page_tolerates_a_last_line_without_newline() -> None:
    chunks = [b'{"id":1}\n{"id":2}']
    assert json.loads(b"".join(json_document(chunks, after=None, limit=5, carry=()))) == {
        "items": [{"id": 1}, {"id": 2}],
        "count": 2,
        "next_after": 2,
        "next": None,
    }


def test_the_next_link_encodes_what_it_repeats() -> None:
    chunks = [b'{"id":4}\n']
    carry = (("q", "a&b =✓"), ("limit", "1"))
    document = json.loads(b"".join(json_document(chunks, after=None, limit=1, carry=carry)))
    assert document["next"] == "?q=a%26b%20%3D%E2%9C%93&limit=1&after=4"
    assert parse_query(document["next"][1:].encode()) == {
        "q": ["a&b =✓"],
        "limit": ["1"],
        "after": ["4"],
    }


async def test_the_async_json_page_gives_the_same_bytes() -> None:
    data = _ndjson(30)
    parts = [data[n : n + 700] for n in range(0, len(data), 700)]

    async def stream() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    got = b"".join([chunk async for chunk in ajson_document(stream(), after=3, limit=30, carry=())])
    assert got == b"".join(json_document(parts, after=3, limit=30, carry=()))


# -- gzip -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, gzip;q=0.001", True),
        ("gzip ; q=0.5", True),
        ("*", True),
        ("br, *;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("*, gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("gzip;q=oops", False),
        ("identity", False),
        ("br, deflate", False),
        ("", False),
        (None, False),
    ],
)
def test_accepts_gzip(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_gzip_output_does_not_depend_on_how_the_input_is_split() -> None:
    data = _ndjson(2000)
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(len(data)), 40))
    parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert b"".join(gzip_chunks(parts)) == gzip_bytes(data)
    assert gzip.decompress(gzip_bytes(data)) == data


async def test_async_gzip_gives_the_same_bytes() -> None:
    data = _ndjson(500)

    async def stream() -> AsyncIterator[bytes]:
        yield data[:1000]
        yield data[1000:]

    assert b"".join([chunk async for chunk in agzip_chunks(stream())]) == gzip_bytes(data)


# -- access checks --------------------------------------------------------------------------------


def _with(authorization: str) -> Request:
    return Request("GET", "/logs", headers={"authorization": authorization})


def _basic(credentials: bytes) -> Request:
    return _with("Basic " + base64.b64encode(credentials).decode())


@pytest.mark.parametrize(
    ("authorization", "allowed"),
    [
        ("Bearer tok", True),
        ("bearer tok", True),
        ("BEARER   tok  ", True),
        ("Bearer tok2", False),
        ("Bearer to", False),
        ("Bearer", False),
        ("tok", False),
        ("Token tok", False),
        ("", False),
    ],
)
def test_bearer_token(authorization: str, allowed: bool) -> None:
    assert bearer_token("tok")(_with(authorization)) is allowed


def test_basic_auth() -> None:
    check = basic_auth("ada", "pa:ss wörd")
    assert check(_basic("ada:pa:ss wörd".encode()))  # the password may hold ':'
    assert check(_with("basic " + base64.b64encode("ada:pa:ss wörd".encode()).decode()))
    assert not check(_basic(b"ada:pa:ss"))
    assert not check(_basic("ADA:pa:ss wörd".encode()))
    assert not check(_basic(b"ada"))
    assert not check(_basic(b"\xff\xfe:\x00"))
    assert not check(_with("Basic not base64!"))
    assert not check(_with("Bearer " + base64.b64encode(b"ada:pa:ss").decode()))
    assert not check(Request("GET", "/logs"))


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: bearer_token("  "), "token"),
        (lambda: basic_auth("a:b", "pw"), "username"),
        (lambda: basic_auth("", "pw"), "username"),
        (lambda: basic_auth("ada", ""), "password"),
    ],
)
def test_access_builders_refuse_unusable_secrets(build: object, field: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{field}: "):
        build()  # type: ignore[operator]


def test_basic_auth_hides_its_password() -> None:
    assert "hunter2" not in repr(basic_auth("ops", "hunter2"))


# -- health -----------------------------------------------------------------------------------------


def test_a_check_must_return_true_to_pass() -> None:
    status, body = health_sync(checks={"none": lambda: None, "one": lambda: 1})  # type: ignore[dict-item,return-value]
    assert status == 503
    assert json.loads(body)["components"] == {
        "none": {"status": "fail", "error": "returned None"},
        "one": {"status": "fail", "error": "returned 1"},
    }


def test_a_long_error_is_cut_short() -> None:
    def fails() -> bool:
        raise RuntimeError("x" * 10_000)

    _, body = health_sync(checks={"long": fails})
    assert len(json.loads(body)["components"]["long"]["error"]) == 200


async def test_async_checks_run_concurrently() -> None:
    both_started = asyncio.Event()
    started = 0

    async def check() -> bool:
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), timeout=5)
        return True

    status, _ = await health(checks={"a": check, "b": check})
    assert status == 200


async def test_wait_sync_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert wait_sync(answer()) == 42
