"""HTTP: FastAPI request throughput and scrape latency, observabilipy vs peers, in one run.

Run with ``hatch run bench:python tools/bench/bench_http.py``.  Every server is a
real uvicorn process on 127.0.0.1 (one worker, no access log); the load comes
from another process, so the figures include the whole ASGI stack.

1. Requests/s of a hello-world FastAPI endpoint: (a) without middleware,
   (b) with ``observabilipy.fastapi.add_observability`` (request metrics and one
   log entry per request in an in-memory log storage), (c) with
   prometheus-fastapi-instrumentator.  The goal: our overhead is no larger than
   theirs, i.e. (b)/(a) >= (c)/(a).  Beside requests/s it prints the CPU time
   each server process spent per request (Linux), which the load generator
   sharing the machine disturbs less.
2. Latency of a scrape of 10,000 counter series: observabilipy's
   ``/metrics/prometheus`` route vs prometheus_client's ``make_asgi_app()``, both
   in a FastAPI app; median and p95 of sequential GETs.  Goal: ours no slower.

Exits 1 if a goal is missed.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import httpx

# Run as a script: make the repository root importable for the shared helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.bench._common import Row, report

REQUESTS = 10_000
WARMUP_REQUESTS = 2_000
CONCURRENCY = 32
# Many short rounds: on a shared machine the noise comes in bursts of seconds, and
# the median of many per-round ratios is steadier than the median of a few.
ROUNDS = 11
SERIES = 10_000
SCRAPES = 200
HOST = "127.0.0.1"
HELLO = "/hello"
OUR_SCRAPE = "/observability/metrics/prometheus"
PEER_SCRAPE = "/metrics/"


# --- The applications, built in the server process -------------------------------------------


def _hello_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get(HELLO)
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    return app


def plain_app() -> Any:
    """(a) The hello-world endpoint alone."""
    return _hello_app()


def ours_app() -> Any:
    """(b) With observabilipy: request metrics, request ids, one stored log entry per request."""
    from observabilipy.core.storage import InMemoryLogStorage
    from observabilipy.fastapi import add_observability

    app = _hello_app()
    add_observability(app, log_storage=InMemoryLogStorage())
    return app


def ours_metrics_only_app() -> Any:
    """For reference: observabilipy's request metrics alone (no log entries, no request ids)."""
    from observabilipy.fastapi import add_observability

    app = _hello_app()
    add_observability(app, logs=False, request_ids=False)
    return app


def theirs_app() -> Any:
    """(c) With prometheus-fastapi-instrumentator, as its README wires it."""
    # Imported by name: the lint environment, where mypy runs, does not install it.
    instrumentator = importlib.import_module("prometheus_fastapi_instrumentator")
    app = _hello_app()
    instrumentator.Instrumentator().instrument(app).expose(app)
    return app


def ours_scrape_app() -> Any:
    """observabilipy's endpoints over a registry of SERIES labelled counter series."""
    from fastapi import FastAPI

    from observabilipy.core.metrics import Registry
    from observabilipy.fastapi import add_observability

    registry = Registry(max_series_per_family=SERIES)
    requests = registry.counter("requests", "Requests", labelnames=("method", "route"))
    for i in range(SERIES):
        requests.labels(method=("GET", "POST")[i % 2], route=f"/items/{i}").inc(i)
    app = FastAPI()
    add_observability(app, registry=registry, middleware=False)
    return app


def theirs_scrape_app() -> Any:
    """prometheus_client's ASGI app over the same SERIES series, mounted as its docs show."""
    import prometheus_client
    from fastapi import FastAPI

    # We write no `_created` series; neither should the peer, so both render the same text.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = prometheus_client.CollectorRegistry()
    requests = prometheus_client.Counter(
        "requests", "Requests", ["method", "route"], registry=registry
    )
    for i in range(SERIES):
        requests.labels(method=("GET", "POST")[i % 2], route=f"/items/{i}").inc(i)
    app = FastAPI()
    app.mount("/metrics", prometheus_client.make_asgi_app(registry=registry))
    return app


APPS: dict[str, Callable[[], Any]] = {
    "plain": plain_app,
    "ours": ours_app,
    "ours_metrics_only": ours_metrics_only_app,
    "theirs": theirs_app,
    "ours_scrape": ours_scrape_app,
    "theirs_scrape": theirs_scrape_app,
}


def serve(name: str, port: int) -> None:
    """Server process: run app ``name`` under uvicorn on HOST:port until terminated."""
    import uvicorn

    uvicorn.run(APPS[name](), host=HOST, port=port, access_log=False, log_level="warning")


# --- The load generator, in its own process --------------------------------------------------


async def _load(port: int, path: str, requests: int, concurrency: int) -> float:
    """Send ``requests`` GETs over ``concurrency`` keep-alive connections; return requests/s.

    A bare HTTP/1.1 client on asyncio streams: far cheaper per request than a
    full client library, so on a small machine the server, not the client, is
    what the figure measures.
    """
    remaining = requests
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()

    async def connection() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while remaining > 0:
                remaining -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"GET {path}: {head.splitlines()[0]!r}")
                length = head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]
                await reader.readexactly(int(length))
        finally:
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return requests / (time.perf_counter() - start)


def load(port: int, path: str, requests: int) -> float:
    """Run the load generator in a separate process; return its requests/s."""
    done = subprocess.run(
        [sys.executable, __file__, "load", str(port), path, str(requests)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(done.stdout)


# --- Orchestration ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Server(NamedTuple):
    """A running server process: where it listens and its process id."""

    port: int
    pid: int


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) process ``pid`` has used so far; None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 of proc(5), utime and stime, counted from after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(name: str, ready_path: str) -> Iterator[Server]:
    """Start app ``name`` in a uvicorn process; yield it once it answers; always stop it."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, __file__, "serve", name, str(port)])
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server {name!r} exited with {process.returncode}")
            try:
                if httpx.get(f"http://{HOST}:{port}{ready_path}", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {name!r} did not answer within 60 s")
            time.sleep(0.1)
        yield Server(port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench_throughput() -> bool:
    """Requests/s of (a), (b) and (c), plus a reference row showing what (b) spends on logs.

    Rounds are interleaved so machine noise hits every configuration alike, and each
    configuration is judged by the median over rounds of its ratio to (a) in that round.
    """
    configurations = [
        ("plain", "(a) FastAPI hello world, no middleware"),
        ("ours", "(b) + observabilipy add_observability"),
        ("theirs", "(c) + prometheus-fastapi-instrumentator"),
        ("ours_metrics_only", "reference: (b) with metrics only, no logs or ids"),
    ]
    rates: dict[str, list[float]] = {name: [] for name, _ in configurations}
    cpu: dict[str, list[float]] = {name: [] for name, _ in configurations}
    with ExitStack() as stack:
        servers = {name: stack.enter_context(server(name, HELLO)) for name, _ in configurations}
        for running in servers.values():
            load(running.port, HELLO, WARMUP_REQUESTS)
        for round_number in range(ROUNDS):
            # Alternate the order too, so no configuration always runs on a warmer machine.
            order = list(servers.items())
            for name, running in order if round_number % 2 == 0 else reversed(order):
                before = cpu_seconds(running.pid)
                rates[name].append(load(running.port, HELLO, REQUESTS))
                after = cpu_seconds(running.pid)
                if before is not None and after is not None:
                    cpu[name].append((after - before) / REQUESTS * 1e6)
    # Each round's configurations ran back to back: the ratio within a round cancels the
    # machine's drift between rounds; the median over rounds drops the outliers.
    ratios = {
        name: statistics.median(r / p for r, p in zip(rates[name], rates["plain"], strict=True))
        for name in rates
    }
    width = max(len(label) for _, label in configurations)
    print(
        f"{REQUESTS:,} requests x {ROUNDS} interleaved rounds, {CONCURRENCY} keep-alive "
        "connections, uvicorn 1 worker"
    )
    print(
        f"{'configuration':<{width}}  {'median req/s':>12}  {'vs (a), median of rounds':>24}"
        f"  {'server CPU/request':>18}  {'extra vs (a)':>12}"
    )
    for name, label in configurations:
        line = f"{label:<{width}}  {statistics.median(rates[name]):>12,.0f}  {ratios[name]:>24.2f}"
        if cpu[name]:
            extra = statistics.median(c - p for c, p in zip(cpu[name], cpu["plain"], strict=True))
            line += f"  {statistics.median(cpu[name]):>15.0f} µs  {extra:>+9.0f} µs"
        print(line)
    ours, theirs = ratios["ours"], ratios["theirs"]
    passed = ours >= theirs
    print(f"goal: (b)/(a) >= (c)/(a): {ours:.2f} >= {theirs:.2f}  {'pass' if passed else 'FAIL'}")
    return passed


def _series(body: str) -> int:
    return sum(line.startswith("requests_total{") for line in body.splitlines())


def bench_scrape() -> bool:
    """Median and p95 scrape latency, our route vs prometheus_client's, GETs alternated."""
    # What a Prometheus server sends for the text format, compression included.
    headers = {"Accept-Encoding": "gzip"}
    timings: dict[str, list[float]] = {"ours": [], "theirs": []}
    with (
        server("ours_scrape", OUR_SCRAPE) as our_server,
        server("theirs_scrape", PEER_SCRAPE) as their_server,
        httpx.Client(headers=headers) as client,
    ):
        urls = {
            "ours": f"http://{HOST}:{our_server.port}{OUR_SCRAPE}",
            "theirs": f"http://{HOST}:{their_server.port}{PEER_SCRAPE}",
        }
        for name, url in urls.items():
            served = _series(client.get(url).text)
            if served != SERIES:
                raise RuntimeError(f"{name}: {served} series served, expected {SERIES}")
        for _ in range(SCRAPES):
            for name, url in urls.items():
                start = time.perf_counter_ns()
                client.get(url).raise_for_status()
                timings[name].append(time.perf_counter_ns() - start)
    ours, theirs = sorted(timings["ours"]), sorted(timings["theirs"])
    p95 = int(SCRAPES * 0.95) - 1
    print(f"\n{SCRAPES} sequential scrapes each, gzip, FastAPI under uvicorn")
    return report(
        [
            Row(
                f"scrape median, {SERIES:,} series",
                statistics.median(ours),
                statistics.median(theirs),
                1.0,
            ),
            Row(f"scrape p95, {SERIES:,} series", ours[p95], theirs[p95], 1.0),
        ],
        peer="prometheus_client",
    )


def main() -> int:
    """Run both comparisons; 0 when every goal is met."""
    print(
        f"Python {sys.version.split()[0]}, uvicorn {version('uvicorn')}, "
        f"fastapi {version('fastapi')}, prometheus-fastapi-instrumentator "
        f"{version('prometheus-fastapi-instrumentator')}, "
        f"prometheus_client {version('prometheus_client')}\n"
    )
    throughput_ok = bench_throughput()
    scrape_ok = bench_scrape()
    return 0 if throughput_ok and scrape_ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["load"]:
        port, path, requests = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        print(asyncio.run(_load(port, path, requests, CONCURRENCY)))
    else:
        sys.exit(main())
