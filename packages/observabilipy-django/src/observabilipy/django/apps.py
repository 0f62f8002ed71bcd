"""The Django app: add ``"observabilipy.django"`` to ``INSTALLED_APPS``.

At start-up it checks the ``OBSERVABILIPY`` setting's keys (a typo fails at
once, not at the first request) and, when the setting's ``runtime`` key asks
for one, starts the :class:`~observabilipy.core.runtime.EmbeddedRuntime`
(snapshots of the registry into the metrics storage, retention).  A runtime
running when the process forks (a gunicorn master with ``--preload``) is
started again in the child, so each worker snapshots its own metrics.

>>> ObservabilipyConfig.name, ObservabilipyConfig.label
('observabilipy.django', 'observabilipy')
"""

from __future__ import annotations

import contextlib
import os
import threading

from django.apps import AppConfig
from observabilipy.django import conf

__all__ = ["ObservabilipyConfig"]

_fork_hook_lock = threading.Lock()
_fork_hook_registered = False
_restart_in_child = False


class ObservabilipyConfig(AppConfig):  # type: ignore[misc]  # Django is untyped here
    """observabilipy's Django app: checks the setting, starts the configured runtime."""

    name = "observabilipy.django"
    label = "observabilipy"
    verbose_name = "observabilipy"
    default = True

    def ready(self) -> None:
        """Check the ``OBSERVABILIPY`` keys; start the runtime if the setting configures one."""
        conf.observability_settings()
        start_runtime()


def start_runtime() -> bool:
    """Start the runtime the settings describe, if any and not running; True if one runs.

    Also arranges for it to start again in a forked child (a worker of a
    pre-loading server).
    """
    global _fork_hook_registered
    runtime = conf.get_runtime()
    if runtime is None:
        return False
    if not runtime.running:
        runtime.start()
    with _fork_hook_lock:
        if not _fork_hook_registered and hasattr(os, "register_at_fork"):
            _fork_hook_registered = True
            os.register_at_fork(before=_note_running, after_in_child=_restart_after_fork)
    return True


def _note_running() -> None:
    global _restart_in_child
    runtime = conf._built.get("runtime")
    _restart_in_child = runtime is not None and runtime.running


def _restart_after_fork() -> None:
    # Core's own fork hook (registered earlier, so run first) has reset the runtime.
    if _restart_in_child:
        runtime = conf._built.get("runtime")
        if runtime is not None and not runtime.running:
            with contextlib.suppress(Exception):  # never break the host's fork
                runtime.start()
