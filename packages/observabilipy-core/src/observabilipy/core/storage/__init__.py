"""Storage backends that need nothing beyond the standard library.

- :class:`InMemoryLogStorage` / :class:`InMemoryMetricsStorage`: everything,
  up to a large cap (one million by default; the oldest are evicted beyond it);
- :class:`RingBufferLogStorage` / :class:`RingBufferMetricsStorage`: the most
  recent ``max_size`` (10,000 by default).

All four implement :class:`~observabilipy.core.ports.LogStoragePort` or
:class:`~observabilipy.core.ports.MetricsStoragePort` and pass the contract
suite in :mod:`observabilipy.core.testing`.

>>> from observabilipy.core.ports import LogStoragePort, MetricsStoragePort
>>> isinstance(RingBufferLogStorage(), LogStoragePort)
True
>>> isinstance(InMemoryMetricsStorage(), MetricsStoragePort)
True
"""

from __future__ import annotations

from observabilipy.core.storage.memory import InMemoryLogStorage, InMemoryMetricsStorage
from observabilipy.core.storage.ring_buffer import RingBufferLogStorage, RingBufferMetricsStorage

__all__ = [
    "InMemoryLogStorage",
    "InMemoryMetricsStorage",
    "RingBufferLogStorage",
    "RingBufferMetricsStorage",
]
