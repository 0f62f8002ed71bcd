"""The embedded runtime: metric history and retention in the background.

Recording a metric is an in-memory add on a :class:`Registry`.  The runtime
snapshots the registry's cumulative values into metrics storage every
``snapshot_interval`` seconds (history for ``/metrics?since=`` and dashboards)
and applies retention every ``retention_interval`` seconds, on one daemon thread.
``async with`` starts it in an asyncio program and stops it with a last snapshot.

    python examples/embedded_runtime.py
"""

from __future__ import annotations

import asyncio

from observabilipy.core import (
    EmbeddedRuntime,
    InMemoryMetricsStorage,
    Registry,
    RetentionPolicy,
)

registry = Registry()
jobs = registry.counter("jobs", "Jobs processed.", labelnames=("queue",))
queue_depth = registry.gauge("queue_depth", "Jobs waiting.")
metrics = InMemoryMetricsStorage()
runtime = EmbeddedRuntime(
    metrics_storage=metrics,
    registry=registry,
    snapshot_interval=0.05,
    metrics_retention=RetentionPolicy(max_count=12),  # a tiny history, to see retention work
    retention_interval=0.1,
)


async def work() -> None:
    """Process a few batches of jobs while the runtime snapshots in the background."""
    for batch in range(5):
        queue_depth.set(5 - batch)
        for _ in range(3):
            jobs.labels(queue="mail").inc()
        await asyncio.sleep(0.06)


async def main() -> None:
    """Run the work inside the runtime, then show its status and the stored history."""
    async with runtime:
        await work()
        status = runtime.status()
        print(f"running={status['running']} failures={status['consecutive_failures']}")
        print(f"snapshot taken: {status['last_snapshot'] is not None}")
    print(f"after exit: running={runtime.running}")

    history = [sample.value for sample in metrics.read_sync(name="jobs")]
    print(f"jobs_total history (cumulative, retention-trimmed): {history}")
    print(f"last stored jobs_total: {history[-1]}")
    removed = runtime.run_retention_now()  # what the next pass would do, run at once
    print(f"retention removed {removed} more, {metrics.count_sync()} samples stored (max 12)")


if __name__ == "__main__":
    asyncio.run(main())
