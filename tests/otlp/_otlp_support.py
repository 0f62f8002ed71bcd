"""A stand-in OTLP/HTTP collector on loopback, and the decoding every test payload goes through.

No collector binary runs here, so the fake one is strict instead: every body is decoded
with opentelemetry-proto (``json_format`` for OTLP/JSON, ``FromString`` for protobuf),
and OTLP/JSON is first checked against the rules the OTLP specification adds to the
proto3 JSON mapping (lowerCamelCase names, hex trace ids, integer enums, 64-bit
integers as decimal strings).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

T = TypeVar("T")
M = TypeVar("M", bound=Message)

_CAMEL_RE = re.compile(r"[a-z][a-zA-Z0-9]*\Z")
_DECIMAL_RE = re.compile(r"-?[0-9]+\Z")
_STRING_INTEGERS = {
    "timeUnixNano",
    "observedTimeUnixNano",
    "startTimeUnixNano",
    "intValue",
    "count",
}
_INTEGER_ENUMS = {"severityNumber", "aggregationTemporality"}
_HEX_IDS = {"traceId": 32, "spanId": 16}


async def aiter_of(items: Iterable[T]) -> AsyncIterator[T]:
    """The async iterable the runtime hands an exporter, from plain items."""
    for item in items:
        yield item


def check_otlp_json(node: Any, name: str = "") -> None:
    """Fail unless ``node`` follows OTLP/JSON's own rules (see the module docstring)."""
    if isinstance(node, dict):
        for key, value in node.items():
            assert _CAMEL_RE.match(key), f"{key!r} is not a lowerCamelCase field name"
            check_otlp_json(value, key)
    elif isinstance(node, list):
        for item in node:
            check_otlp_json(item, "bucketCounts[]" if name == "bucketCounts" else name)
    elif name in _STRING_INTEGERS or name == "bucketCounts[]":
        assert isinstance(node, str), f"{name} must be a decimal string, got {node!r}"
        assert _DECIMAL_RE.match(node), f"{name} must be a decimal string, got {node!r}"
    elif name in _INTEGER_ENUMS:
        assert type(node) is int, f"{name} must be an integer enum, got {node!r}"
    elif name in _HEX_IDS:
        assert isinstance(node, str), f"{name} must be a hex string, got {node!r}"
        assert re.fullmatch(f"[0-9a-f]{{{_HEX_IDS[name]}}}", node), (
            f"{name} must be {_HEX_IDS[name]} lowercase hex digits, got {node!r}"
        )


def _hex_ids_to_base64(node: Any) -> Any:
    # What a collector's OTLP/JSON unmarshaler does before the proto3 mapping: ids are hex.
    if isinstance(node, dict):
        return {
            key: base64.b64encode(bytes.fromhex(value)).decode()
            if key in _HEX_IDS
            else _hex_ids_to_base64(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def parse_otlp_json(body: bytes, message: M) -> M:
    """Check ``body`` as OTLP/JSON and parse it into ``message`` (unknown fields refused)."""
    document = json.loads(body.decode("utf-8"))
    check_otlp_json(document)
    json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=False)
    return message


def any_value(value: AnyValue) -> tuple[str | None, object]:
    """A decoded AnyValue as (kind, python value), so tests check the kind too."""
    kind = value.WhichOneof("value")
    return (kind, getattr(value, kind)) if kind else (None, None)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, tuple[str | None, object]]:
    """Decoded attributes: key -> (kind, value)."""
    return {pair.key: any_value(pair.value) for pair in pairs}


@dataclass
class Answer:
    """How the fake collector answers one request (body None: an empty OTLP response)."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    """One request the fake collector got."""

    path: str
    headers: dict[str, str]
    raw: bytes
    decoded: Message | None = None
    #: The status the fake collector answered with.
    status: int = 0

    @property
    def content_type(self) -> str:
        """The request's Content-Type."""
        return self.headers.get("content-type", "")

    @property
    def body(self) -> bytes:
        """The payload, gunzipped when Content-Encoding says gzip (and only then)."""
        if self.headers.get("content-encoding") == "gzip":
            assert self.raw[:2] == b"\x1f\x8b", "Content-Encoding: gzip on a body that is not"
            return gzip.decompress(self.raw)
        assert "content-encoding" not in self.headers, self.headers
        return self.raw

    def decode(self, message: M) -> M:
        """The body parsed into ``message`` per its Content-Type."""
        if self.content_type == "application/json":
            return parse_otlp_json(self.body, message)
        assert self.content_type == "application/x-protobuf", self.content_type
        message.ParseFromString(self.body)
        return message

    def logs(self) -> ExportLogsServiceRequest:
        """The body as an ExportLogsServiceRequest (decoded once, when it arrived)."""
        assert isinstance(self.decoded, ExportLogsServiceRequest), self.path
        return self.decoded

    def metrics(self) -> ExportMetricsServiceRequest:
        """The body as an ExportMetricsServiceRequest (decoded once, when it arrived)."""
        assert isinstance(self.decoded, ExportMetricsServiceRequest), self.path
        return self.decoded


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        collector = self.server.collector
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
        # Every payload is decoded as it arrives, whether or not the test looks at it.
        is_logs = self.path.endswith("/logs")
        request: Message = ExportLogsServiceRequest() if is_logs else ExportMetricsServiceRequest()
        try:
            received.decoded = received.decode(request)
        except Exception as exc:
            collector.invalid.append(f"{self.path}: {type(exc).__name__}: {exc}")
        with collector.lock:
            collector.requests.append(received)
            answer = collector.answers.popleft() if collector.answers else Answer()
            received.status = answer.status
        if answer.delay:
            time.sleep(answer.delay)
        body = answer.body
        headers = dict(answer.headers)
        if body is None:  # what a collector answers a full success with
            content_type = received.headers.get("content-type", "application/json")
            response: Message = (
                ExportLogsServiceResponse() if is_logs else ExportMetricsServiceResponse()
            )
            if content_type == "application/json":
                body = json_format.MessageToJson(response).encode()
            else:
                body = response.SerializeToString()
            headers.setdefault("Content-Type", content_type)
        self.send_response(answer.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read ``requests`` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    collector: FakeCollector

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: a client that gave up (a timeout test) leaves a broken pipe behind."""


class FakeCollector:
    """An OTLP/HTTP receiver on a free loopback port that records requests and answers as told."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        #: Why each payload that did not decode did not (the fixture fails the test on any).
        self.invalid: list[str] = []
        self.answers: deque[Answer] = deque()
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.collector = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, *answers: Answer) -> None:
        """Answer the next requests so, in order (then: full success)."""
        with self.lock:
            self.answers.extend(answers)

    def __enter__(self) -> FakeCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
