"""Settings-driven wiring: the ``OBSERVABILIPY`` setting, read once, lazily.

A Django project describes its observability in ``settings.py``; the default
:class:`~observabilipy.core.http.ObservabilityAPI` (served by
``observabilipy.django.urls``), the default
:class:`~observabilipy.core.http.RequestTelemetry` (used by the middleware and
:func:`~observabilipy.django.decorators.instrument_view`) and the
:class:`~observabilipy.core.runtime.EmbeddedRuntime` (started by the app config)
are built from it at first use::

    OBSERVABILIPY = {
        "log_storage": "myproject.observability.logs",
        "metrics_storage": "myproject.observability.metrics",
        "access": "myproject.observability.check_token",
        "runtime": {"snapshot_interval": 10.0},
    }

Every key is optional:

=====================  ==========================================================================
key                    meaning (default)
=====================  ==========================================================================
``log_storage``        where ``/logs`` reads and request log entries go: a ``LogStoragePort``,
                       or a dotted path to one or to a factory called once with no
                       arguments (None: ``/logs`` answers 404; request entries go to the
                       ``observabilipy.http`` logger)
``metrics_storage``    what ``/metrics`` reads and the runtime snapshots into; the same forms
                       (None: ``/metrics`` answers 404, ``/metrics/prometheus`` still works)
``registry``           the metric ``Registry`` (or dotted path / factory); default: core's
                       default registry
``runtime``            the ``EmbeddedRuntime`` the app config starts: ``True`` (default
                       intervals), a dict of its options (``snapshot_interval``,
                       ``retention_interval``, ``log_retention``, ``metrics_retention``), an
                       ``EmbeddedRuntime`` or a dotted path to one (default: ``False``, none)
``access``             the access check of every route: ``bearer_token(...)``,
                       ``basic_auth(...)``, any callable taking the ``Request``, or a dotted
                       path to one (default: None, open)
``health_public``      ``/health`` skips the access check (``True``)
``health_checks``      ``{name: callable or dotted path}``: custom ``/health`` checks, sync or
                       async (``{}``)
``gzip``               compress large bodies for clients that accept it (``True``)
``gzip_min_size``      smallest body compressed, in bytes (``1024``)
``max_limit``          the largest ``limit`` a client may ask for (``10000``)
``default_limit``      the page size without ``limit`` (``1000``)
``api``                an ``ObservabilityAPI`` (or dotted path) to serve instead of building
                       one from the keys above (which then may not be given)
``prefix``             where ``include("observabilipy.django.urls")`` mounts the endpoints
                       (``"observability"``)
``async_views``        ``observabilipy.django.urls`` serves async views (for ASGI) instead of
                       sync ones (``False``)
``telemetry``          options of the request ``RequestTelemetry`` (``metrics``, ``logs``,
                       ``request_ids``, ``in_flight``, ``request_id_header``,
                       ``exclude_paths``, ``buckets``, ``unmatched_route``); its ``registry``
                       and ``log_storage`` default to the ones above, ``exclude_paths`` to the
                       endpoints under ``prefix`` (``{}``)
=====================  ==========================================================================

An unknown key or a wrong value raises
:class:`~observabilipy.core.errors.ConfigurationError` naming it, at start-up
(the app config checks the keys) or at first use.  Changing the setting in
tests (``override_settings``) rebuilds everything at next use.

>>> sorted(KEYS)[:4]
['access', 'api', 'async_views', 'default_limit']
>>> check_keys({"gzip": False, "prefixx": "obs"})
Traceback (most recent call last):
...
observabilipy.core.errors.ConfigurationError: OBSERVABILIPY: unknown key 'prefixx'; the keys are: access, api, async_views, default_limit, gzip, gzip_min_size, health_checks, health_public, log_storage, max_limit, metrics_storage, prefix, registry, runtime, telemetry
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.http import ObservabilityAPI
from observabilipy.core.http.telemetry import RequestTelemetry
from observabilipy.core.metrics import Registry
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort
from observabilipy.core.runtime import EmbeddedRuntime

__all__ = [
    "DEFAULT_PREFIX",
    "KEYS",
    "SETTING",
    "check_keys",
    "get_api",
    "get_runtime",
    "get_telemetry",
    "observability_settings",
    "reset",
]

#: The name of the Django setting.
SETTING: Final = "OBSERVABILIPY"
#: Where ``observabilipy.django.urls`` mounts the endpoints unless ``prefix`` says otherwise.
DEFAULT_PREFIX: Final = "observability"

# ObservabilityAPI's keyword arguments that may be given as settings.
_API_OPTIONS: Final = frozenset(
    {
        "log_storage",
        "metrics_storage",
        "registry",
        "runtime",
        "access",
        "health_public",
        "health_checks",
        "gzip",
        "gzip_min_size",
        "max_limit",
        "default_limit",
    }
)
#: Every key the setting may hold.
KEYS: Final = _API_OPTIONS | {"api", "prefix", "async_views", "telemetry"}

_lock = threading.RLock()
_built: dict[str, Any] = {}


def observability_settings() -> dict[str, Any]:
    """The ``OBSERVABILIPY`` setting (an empty dict when it is not set), its keys checked."""
    from django.conf import settings

    value = getattr(settings, SETTING, None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{SETTING}: must be a dict, got {type(value).__name__}")
    check_keys(value)
    return dict(value)


def check_keys(value: Mapping[str, Any]) -> None:
    """Raise ConfigurationError for a key the setting does not know (see the table above).

    >>> check_keys({"log_storage": None, "prefix": "obs"})
    """
    for key in value:
        if key not in KEYS:
            raise ConfigurationError(
                f"{SETTING}: unknown key {key!r}; the keys are: {', '.join(sorted(KEYS))}"
            )
    if "api" in value:
        clash = sorted(_API_OPTIONS & set(value) - {"runtime"})
        if clash:
            raise ConfigurationError(
                f"{SETTING}: 'api' is given, so {', '.join(clash)} cannot be: "
                "configure that API itself"
            )


def get_api() -> ObservabilityAPI:
    """The API the settings describe, built at first call and kept.

    >>> callable(get_api)
    True
    """
    api: ObservabilityAPI = _get("api", _build_api)
    return api


def get_telemetry() -> RequestTelemetry:
    """The request telemetry the settings describe, built at first call and kept."""
    telemetry: RequestTelemetry = _get("telemetry", _build_telemetry)
    return telemetry


def get_runtime() -> EmbeddedRuntime | None:
    """The runtime the settings describe (None when ``runtime`` is off), built once.

    It is not started here: the app config starts it (see :mod:`observabilipy.django.apps`).
    """
    runtime: EmbeddedRuntime | None = _get("runtime", _build_runtime)
    return runtime


def reset() -> None:
    """Forget what was built, so the next use reads the setting again (tests do this).

    A runtime built from the settings and started is stopped.

    >>> reset()
    """
    with _lock:
        runtime = _built.get("runtime")
        _built.clear()
    if isinstance(runtime, EmbeddedRuntime) and runtime.running:
        runtime.stop()


def prefix() -> str:
    """The ``prefix`` setting, without slashes around it.

    >>> callable(prefix)
    True
    """
    value = observability_settings().get("prefix", DEFAULT_PREFIX)
    if not isinstance(value, str):
        raise ConfigurationError(f"{SETTING}['prefix']: must be a str such as 'observability'")
    return value.strip("/")


def async_views() -> bool:
    """The ``async_views`` setting."""
    return bool(observability_settings().get("async_views", False))


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        reset()


def _connect() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="observabilipy.django.conf")


_connect()


# -- building -----------------------------------------------------------------------------


def _get(name: str, build: Callable[[], Any]) -> Any:
    try:
        return _built[name]
    except KeyError:
        pass
    with _lock:
        if name not in _built:
            _built[name] = build()
        return _built[name]


def _part(key: str) -> Any:
    """A shared part the settings name (storage or registry), built once."""
    return _get("part:" + key, lambda: _build_part(key))


def _build_part(key: str) -> Any:
    value = observability_settings().get(key)
    kinds: dict[str, type] = {
        "log_storage": LogStoragePort,
        "metrics_storage": MetricsStoragePort,
        "registry": Registry,
    }
    return _instance(key, value, kinds[key])


def _build_api() -> ObservabilityAPI:
    options = observability_settings()
    if "api" in options:
        api = _instance("api", options["api"], ObservabilityAPI)
        if api is None:
            raise ConfigurationError(f"{SETTING}['api']: must be an ObservabilityAPI")
        return api  # type: ignore[no-any-return]
    arguments: dict[str, Any] = {
        key: options[key] for key in _API_OPTIONS & set(options) - {"runtime"}
    }
    for key in ("log_storage", "metrics_storage", "registry"):
        arguments[key] = _part(key)
    if "access" in options:
        arguments["access"] = _imported("access", options["access"])
    if "health_checks" in options:
        checks = options["health_checks"]
        if not isinstance(checks, Mapping):
            raise ConfigurationError(f"{SETTING}['health_checks']: must be a dict of name: check")
        arguments["health_checks"] = {
            name: _imported(f"health_checks[{name!r}]", check) for name, check in checks.items()
        }
    arguments["runtime"] = get_runtime()
    try:
        return ObservabilityAPI(**arguments)
    except ConfigurationError as error:
        raise ConfigurationError(f"{SETTING}: {error}") from None


def _build_telemetry() -> RequestTelemetry:
    options = observability_settings().get("telemetry") or {}
    if not isinstance(options, Mapping):
        raise ConfigurationError(
            f"{SETTING}['telemetry']: must be a dict of RequestTelemetry options"
        )
    arguments = dict(options)
    arguments.setdefault("registry", _part("registry"))
    arguments.setdefault("log_storage", _part("log_storage"))
    mount = "/" + prefix()
    if mount != "/":
        arguments.setdefault("exclude_paths", (mount, mount + "/*"))
    try:
        return RequestTelemetry(**arguments)
    except (ConfigurationError, TypeError) as error:
        raise ConfigurationError(f"{SETTING}['telemetry']: {error}") from None


def _build_runtime() -> EmbeddedRuntime | None:
    value = observability_settings().get("runtime", False)
    if value is False or value is None:
        return None
    if value is True:
        value = {}
    if isinstance(value, Mapping):
        try:
            return EmbeddedRuntime(
                log_storage=_part("log_storage"),
                metrics_storage=_part("metrics_storage"),
                registry=_part("registry"),
                **value,
            )
        except (ConfigurationError, TypeError) as error:
            raise ConfigurationError(f"{SETTING}['runtime']: {error}") from None
    runtime: EmbeddedRuntime = _instance("runtime", value, EmbeddedRuntime)
    return runtime


def _imported(key: str, value: Any) -> Any:
    """``value``, or what its dotted path names."""
    if isinstance(value, str):
        from django.utils.module_loading import import_string

        try:
            return import_string(value)
        except ImportError as error:
            raise ConfigurationError(f"{SETTING}[{key!r}]: {error}") from None
    return value


def _instance(key: str, value: Any, kind: type) -> Any:
    """``value`` as a ``kind``: given, imported by dotted path, or made by a factory."""
    value = _imported(key, value)
    if value is None or isinstance(value, kind):
        return value
    if callable(value):
        made = value()
        if isinstance(made, kind):
            return made
        value = made
    raise ConfigurationError(
        f"{SETTING}[{key!r}]: must be {_a(kind.__name__)}, a dotted path to one or a factory "
        f"making one, got {type(value).__name__}"
    )


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "AEIOU" else "a ") + noun
