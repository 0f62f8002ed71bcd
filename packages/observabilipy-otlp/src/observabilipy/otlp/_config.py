"""Where and how each signal is sent: explicit arguments first, then the OTEL_* environment.

The rules are those of the OpenTelemetry OTLP exporter specification:

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the ``endpoint`` argument) is a base URL: each
  signal appends ``v1/logs`` or ``v1/metrics`` to its path.  The per-signal
  ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` and ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` are
  used as they are.  Default: ``http://localhost:4318``.
- ``OTEL_EXPORTER_OTLP_HEADERS``: ``key=value`` pairs separated by commas, both
  URL-decoded; ``OTEL_EXPORTER_OTLP_TIMEOUT`` in milliseconds (default 10,000);
  ``OTEL_EXPORTER_OTLP_COMPRESSION`` ``gzip`` or ``none`` (default none);
  ``OTEL_EXPORTER_OTLP_PROTOCOL`` ``http/json`` or ``http/protobuf``.  Each has a
  per-signal twin (``OTEL_EXPORTER_OTLP_LOGS_HEADERS``...) that wins over it.
- ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` describe the resource.

An explicit argument wins over both variables.  Anything that cannot work raises
:class:`~observabilipy.core.errors.ConfigurationError` naming the variable or argument.

>>> target = resolve_target("logs", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/otlp/"})
>>> target.url, target.encoding, target.compression, target.timeout
('http://collector:4318/otlp/v1/logs', 'json', 'none', 10.0)
"""

from __future__ import annotations

import math
import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Final, Literal

from observabilipy.core.errors import ConfigurationError

__all__ = [
    "DEFAULT_ENDPOINT",
    "Compression",
    "Encoding",
    "ResourceValue",
    "SignalTarget",
    "parse_key_values",
    "resolve_resource",
    "resolve_target",
]

Encoding = Literal["json", "protobuf"]
Compression = Literal["gzip", "none"]
ResourceValue = str | int | float | bool

DEFAULT_ENDPOINT: Final = "http://localhost:4318"
DEFAULT_TIMEOUT: Final = 10.0  # seconds: the specification's 10,000 ms
_PROTOCOLS: Final[dict[str, Encoding]] = {"http/json": "json", "http/protobuf": "protobuf"}
_COMPRESSIONS: Final = ("gzip", "none")
_ENCODINGS: Final = ("json", "protobuf")


def _sdk_version() -> str:
    try:
        return metadata.version("observabilipy-otlp")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


SDK_VERSION: Final = _sdk_version()


@dataclass(frozen=True, slots=True)
class SignalTarget:
    """Everything needed to send one signal: URL, headers, timeout (s), compression, encoding."""

    url: str
    headers: Mapping[str, str]
    timeout: float
    compression: Compression
    encoding: Encoding


def parse_key_values(text: str, *, variable: str) -> dict[str, str]:
    """Read a ``key1=value1,key2=value2`` list (W3C Baggage style), URL-decoding both sides.

    >>> parse_key_values("api-key=s%3Dcret, tenant = blue", variable="OTEL_EXPORTER_OTLP_HEADERS")
    {'api-key': 's=cret', 'tenant': 'blue'}
    >>> parse_key_values("oops", variable="OTEL_EXPORTER_OTLP_HEADERS")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: OTEL_EXPORTER_OTLP_HEADERS: 'oops' is not key=value; expected a comma-separated list such as 'api-key=secret,tenant=blue'
    """
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = urllib.parse.unquote(key.strip())
        if not sep or not key:
            raise ConfigurationError(
                f"{variable}: {item.strip()!r} is not key=value; expected a comma-separated "
                "list such as 'api-key=secret,tenant=blue'"
            )
        pairs[key] = urllib.parse.unquote(value.strip())
    return pairs


def _env(environ: Mapping[str, str], signal: str, suffix: str) -> tuple[str, str] | None:
    """(variable, value) of the per-signal variable, else the generic one, else None."""
    for variable in (
        f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}",
        f"OTEL_EXPORTER_OTLP_{suffix}",
    ):
        value = environ.get(variable, "").strip()
        if value:
            return variable, value
    return None


def _check_url(url: str, *, source: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{source}: {url!r} is not an http(s) URL; expected something like "
            f"{DEFAULT_ENDPOINT!r} (OTLP/HTTP, usually port 4318)"
        )
    return url


def _signal_url(base: str, signal: str) -> str:
    # The specification appends "v1/<signal>" to the base URL's path, keeping its prefix.
    return base.rstrip("/") + f"/v1/{signal}"


def _resolve_url(signal: str, endpoint: str | None, environ: Mapping[str, str]) -> str:
    if endpoint is not None:
        return _signal_url(_check_url(endpoint, source="endpoint"), signal)
    variable = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    own = environ.get(variable, "").strip()
    if own:
        return _check_url(own, source=variable)
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if base:
        return _signal_url(_check_url(base, source="OTEL_EXPORTER_OTLP_ENDPOINT"), signal)
    return _signal_url(DEFAULT_ENDPOINT, signal)


def _resolve_headers(
    signal: str, headers: Mapping[str, str] | None, environ: Mapping[str, str]
) -> dict[str, str]:
    if headers is not None:
        if not isinstance(headers, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
        ):
            raise ConfigurationError(f"headers: must map str names to str values, got {headers!r}")
        return dict(headers)
    found = _env(environ, signal, "HEADERS")
    return parse_key_values(found[1], variable=found[0]) if found else {}


def _resolve_timeout(signal: str, timeout: float | None, environ: Mapping[str, str]) -> float:
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ConfigurationError(f"timeout: must be seconds as a number, got {timeout!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigurationError(
                f"timeout: must be a positive number of seconds, got {timeout!r}"
            )
        return float(timeout)
    found = _env(environ, signal, "TIMEOUT")
    if found is None:
        return DEFAULT_TIMEOUT
    variable, text = found
    try:
        milliseconds = float(text)
    except ValueError:
        milliseconds = math.nan
    if not (math.isfinite(milliseconds) and milliseconds > 0):
        raise ConfigurationError(
            f"{variable}: {text!r} is not a positive number of milliseconds; e.g. 10000"
        )
    return milliseconds / 1000.0


def _resolve_compression(
    signal: str, compression: str | None, environ: Mapping[str, str]
) -> Compression:
    if compression is not None:
        source, value = "compression", compression
    else:
        found = _env(environ, signal, "COMPRESSION")
        if found is None:
            return "none"
        source, value = found[0], found[1].lower()
    if value == "gzip":
        return "gzip"
    if value == "none":
        return "none"
    raise ConfigurationError(f"{source}: {value!r} is not supported; use one of {_COMPRESSIONS}")


def _resolve_encoding(signal: str, encoding: str | None, environ: Mapping[str, str]) -> Encoding:
    if encoding is not None:
        if encoding not in _ENCODINGS:
            raise ConfigurationError(
                f"encoding: {encoding!r} is not supported; use one of {_ENCODINGS}"
            )
        return "protobuf" if encoding == "protobuf" else "json"
    found = _env(environ, signal, "PROTOCOL")
    if found is None:
        return "json"  # ours, not the specification's http/protobuf: it needs no extra
    variable, value = found
    if value.lower() not in _PROTOCOLS:
        raise ConfigurationError(
            f"{variable}: {value!r} is not supported; observabilipy-otlp speaks OTLP/HTTP: "
            f"use one of {tuple(_PROTOCOLS)} (and the collector's HTTP port, usually 4318)"
        )
    return _PROTOCOLS[value.lower()]


def resolve_target(
    signal: Literal["logs", "metrics"],
    *,
    endpoint: str | None = None,
    encoding: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    compression: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> SignalTarget:
    """The settings of one signal: each argument given, else its variables, else the default.

    ``environ`` defaults to ``os.environ``.

    >>> env = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://otlp.example/custom",
    ...        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    >>> target = resolve_target("metrics", environ=env, encoding="json")
    >>> target.url, target.timeout, target.encoding
    ('https://otlp.example/custom', 2.5, 'json')
    >>> resolve_target("logs", environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ConfigurationError: OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported; observabilipy-otlp speaks OTLP/HTTP: use one of ('http/json', 'http/protobuf') (and the collector's HTTP port, usually 4318)
    """
    env = os.environ if environ is None else environ
    return SignalTarget(
        url=_resolve_url(signal, endpoint, env),
        headers=_resolve_headers(signal, headers, env),
        timeout=_resolve_timeout(signal, timeout, env),
        compression=_resolve_compression(signal, compression, env),
        encoding=_resolve_encoding(signal, encoding, env),
    )


def _default_service_name() -> str:
    # The semantic conventions: "unknown_service:" + the process executable's name.
    executable = os.path.basename(sys.executable or "")
    return f"unknown_service:{executable}" if executable else "unknown_service"


def resolve_resource(
    *,
    service_name: str | None = None,
    resource_attributes: Mapping[str, ResourceValue] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, ResourceValue]:
    """The resource attributes sent with every request.

    ``OTEL_RESOURCE_ATTRIBUTES`` first, ``resource_attributes`` over it; ``service.name``
    from ``service_name``, else ``resource_attributes``, else ``OTEL_SERVICE_NAME``, else
    ``OTEL_RESOURCE_ATTRIBUTES``, else ``unknown_service:<executable>``; then the
    ``telemetry.sdk.*`` attributes, which name this library.

    >>> resource = resolve_resource(
    ...     resource_attributes={"deployment.environment": "prod", "replica": 2},
    ...     environ={"OTEL_SERVICE_NAME": "shop", "OTEL_RESOURCE_ATTRIBUTES": "team=web,service.name=ignored"},
    ... )
    >>> {key: resource[key] for key in ("service.name", "team", "replica", "telemetry.sdk.name")}
    {'service.name': 'shop', 'team': 'web', 'replica': 2, 'telemetry.sdk.name': 'observabilipy'}
    """
    env = os.environ if environ is None else environ
    attributes: dict[str, ResourceValue] = {}
    text = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if text.strip():
        attributes.update(parse_key_values(text, variable="OTEL_RESOURCE_ATTRIBUTES"))
    env_service = env.get("OTEL_SERVICE_NAME", "").strip()
    if env_service:
        attributes["service.name"] = env_service
    if resource_attributes is not None:
        if not isinstance(resource_attributes, Mapping):
            raise ConfigurationError(
                f"resource_attributes: must be a mapping, got {type(resource_attributes).__name__}"
            )
        for key, value in resource_attributes.items():
            if not isinstance(key, str) or not isinstance(value, (str, int, float, bool)):
                raise ConfigurationError(
                    f"resource_attributes[{key!r}]: values must be str, int, float or bool, "
                    f"got {type(value).__name__}"
                )
            attributes[key] = value
    if service_name is not None:
        if not isinstance(service_name, str) or not service_name:
            raise ConfigurationError(f"service_name: must be a non-empty str, got {service_name!r}")
        attributes["service.name"] = service_name
    attributes.setdefault("service.name", _default_service_name())
    attributes.update(
        {
            "telemetry.sdk.name": "observabilipy",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": SDK_VERSION,
        }
    )
    return attributes
