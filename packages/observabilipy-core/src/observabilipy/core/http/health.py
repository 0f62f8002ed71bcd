"""What ``/health`` reports: each component's status, and the overall verdict.

Components, each ``{"status": "pass"}``, ``{"status": "warn", "warning": "..."}``
or ``{"status": "fail", "error": "..."}``:

- ``log_storage`` / ``metrics_storage`` (when given): reachable, i.e. a read of
  at most one entry succeeds;
- ``runtime`` (when given): its thread runs and its last task did not fail,
  with the details of :meth:`~observabilipy.core.runtime.EmbeddedRuntime.status`
  (``exporters``: each exporter's state, backlog, last success and error);
- each custom check, under its own name: it passes when it returns True (sync
  or async); False, another value or an exception fails it.

An exporter that cannot deliver (a collector outage) or whose collector refuses
data makes the runtime component ``warn``, not ``fail``: the service itself is
healthy and its data waits in local storage, so a load balancer must not take
it out of rotation; the warning names the exporters and their backlog.

The document is ``{"status": "pass" | "warn" | "fail", "components": {...}}``
and the status code 200 unless a component fails (503).  Error texts are cut
to 200 characters.

>>> status, body = health_sync(checks={"cache": lambda: True})
>>> status, body
(200, b'{"status":"pass","components":{"cache":{"status":"pass"}}}')
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from observabilipy.core.exporting import ExporterStatus
from observabilipy.core.ports import LogStoragePort, MetricsStoragePort
from observabilipy.core.runtime import EmbeddedRuntime

__all__ = ["BUILTIN_COMPONENTS", "HealthCheck", "health", "health_sync", "wait_sync"]

#: A custom health check: True when healthy, sync or async.
HealthCheck = Callable[[], bool | Awaitable[bool]]

#: Component names the API reports itself; custom checks take other names.
BUILTIN_COMPONENTS: Final = frozenset({"log_storage", "metrics_storage", "runtime"})

_ERROR_TEXT_MAX: Final = 200

_Component = dict[str, Any]


def wait_sync(value: object) -> object:
    """``value``, or its result when it is awaitable (run on a private event loop).

    Lets ``handle_sync`` accept async checks.  A thread already running an event
    loop cannot start another, so there the awaitable runs on a helper thread.

    >>> async def answer():
    ...     return 42
    >>> wait_sync(answer()), wait_sync(7)
    (42, 7)
    """
    if not inspect.isawaitable(value):
        return value
    awaitable = value

    async def result() -> object:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(result())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="observabilipy-check") as pool:
        return pool.submit(asyncio.run, result()).result()


def _passed() -> _Component:
    return {"status": "pass"}


def _failed(problem: str) -> _Component:
    return {"status": "fail", "error": problem[:_ERROR_TEXT_MAX]}


def _raised(exc: BaseException) -> _Component:
    return _failed(f"{type(exc).__name__}: {exc}")


def _verdict(result: object) -> _Component:
    if result is True:
        return _passed()
    return _failed(f"returned {result!r}")


def _runtime(runtime: EmbeddedRuntime) -> _Component:
    try:
        status = runtime.status()
    except Exception as exc:
        return _raised(exc)
    troubles = [
        _exporter_trouble(name, exporter)
        for name, exporter in status["exporters"].items()
        if exporter["state"] in ("retrying", "dropping")
    ]
    if not status["running"]:
        component = _failed("not running; call start() (or use it as a context manager)")
    elif status["consecutive_failures"]:
        component = _failed(f"its last task failed: {status['last_error']}")
    elif troubles:
        component = {"status": "warn", "warning": "; ".join(troubles)[:_ERROR_TEXT_MAX]}
    else:
        component = _passed()
    component.update(status)
    return component


def _exporter_trouble(name: str, exporter: ExporterStatus) -> str:
    if exporter["state"] == "dropping":
        return (
            f"exporter {name!r}: the collector refuses data for good ({exporter['last_error']}); "
            "it is dropped and counted"
        )
    waiting = "items" if exporter["backlog"] is None else f"{exporter['backlog']} items"
    return (
        f"exporter {name!r} cannot deliver ({exporter['last_error']}); "
        f"{waiting} wait in local storage and are retried"
    )


def _report(components: dict[str, _Component]) -> tuple[int, bytes]:
    statuses = {component["status"] for component in components.values()}
    verdict = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    document = {"status": verdict, "components": components}
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str)
    return (503 if verdict == "fail" else 200), body.encode()


def health_sync(
    *,
    log_storage: LogStoragePort | None = None,
    metrics_storage: MetricsStoragePort | None = None,
    runtime: EmbeddedRuntime | None = None,
    checks: Mapping[str, HealthCheck] | None = None,
) -> tuple[int, bytes]:
    """Run every check on this thread; return (status code, JSON body).

    >>> def database():
    ...     raise ConnectionError("refused")
    >>> health_sync(checks={"database": database})
    (503, b'{"status":"fail","components":{"database":{"status":"fail","error":"ConnectionError: refused"}}}')
    """
    components: dict[str, _Component] = {}
    for name, storage in (("log_storage", log_storage), ("metrics_storage", metrics_storage)):
        if storage is not None:
            try:
                for _ in storage.read_sync(limit=1):
                    pass
                components[name] = _passed()
            except Exception as exc:
                components[name] = _raised(exc)
    if runtime is not None:
        components["runtime"] = _runtime(runtime)
    for name, check in (checks or {}).items():
        try:
            components[name] = _verdict(wait_sync(check()))
        except Exception as exc:
            components[name] = _raised(exc)
    return _report(components)


async def health(
    *,
    log_storage: LogStoragePort | None = None,
    metrics_storage: MetricsStoragePort | None = None,
    runtime: EmbeddedRuntime | None = None,
    checks: Mapping[str, HealthCheck] | None = None,
) -> tuple[int, bytes]:
    """Async twin of :func:`health_sync` (storages read through their async methods;
    async checks run concurrently; sync checks run on the event loop's thread).

    >>> async def cache():
    ...     return False
    >>> asyncio.run(health(checks={"cache": cache}))
    (503, b'{"status":"fail","components":{"cache":{"status":"fail","error":"returned False"}}}')
    """
    components: dict[str, _Component] = {}
    for name, storage in (("log_storage", log_storage), ("metrics_storage", metrics_storage)):
        if storage is not None:
            try:
                async for _ in storage.read(limit=1):
                    pass
                components[name] = _passed()
            except Exception as exc:
                components[name] = _raised(exc)
    if runtime is not None:
        components["runtime"] = _runtime(runtime)
    if checks:
        verdicts = await asyncio.gather(*(_acheck(check) for check in checks.values()))
        components.update(zip(checks, verdicts, strict=True))
    return _report(components)


async def _acheck(check: HealthCheck) -> _Component:
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        return _raised(exc)
    return _verdict(result)
