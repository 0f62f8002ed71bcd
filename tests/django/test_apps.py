"""The app config: it checks the setting and starts the runtime the setting asks for."""

from __future__ import annotations

import json
import time

import pytest
from django.apps import apps
from django.test import Client, override_settings

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.metrics import Registry
from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.core.storage import InMemoryMetricsStorage
from observabilipy.django import conf
from observabilipy.django.apps import ObservabilipyConfig, start_runtime


def test_the_app_is_installed_under_its_label() -> None:
    assert isinstance(apps.get_app_config("observabilipy"), ObservabilipyConfig)


def test_ready_refuses_an_unknown_key() -> None:
    with (
        override_settings(OBSERVABILIPY={"runtme": True}),
        pytest.raises(ConfigurationError, match="unknown key 'runtme'"),
    ):
        apps.get_app_config("observabilipy").ready()


def test_no_runtime_unless_the_setting_asks() -> None:
    with override_settings(OBSERVABILIPY={}):
        assert start_runtime() is False
        assert conf.get_runtime() is None


def test_the_configured_runtime_starts_snapshots_and_stops_on_reset() -> None:
    registry, storage = Registry(), InMemoryMetricsStorage()
    registry.counter("jobs", "Jobs run.").inc(3)
    setting = {
        "registry": registry,
        "metrics_storage": storage,
        "runtime": {"snapshot_interval": 0.05},
    }
    with override_settings(OBSERVABILIPY=setting):
        assert start_runtime() is True
        runtime = conf.get_runtime()
        assert isinstance(runtime, EmbeddedRuntime)
        assert runtime.running
        deadline = time.monotonic() + 10
        while not any(s.name == "jobs_total" for s in storage.read_sync()):
            assert time.monotonic() < deadline, "the runtime snapshots the registry"
            time.sleep(0.02)
        response = Client().get("/observability/health")
        assert json.loads(response.content)["components"]["runtime"]["status"] == "pass"
    assert not runtime.running, "changing the setting stops the runtime built from it"


def test_a_runtime_instance_or_dotted_path_is_used_as_is() -> None:
    runtime = EmbeddedRuntime(registry=Registry())
    with override_settings(OBSERVABILIPY={"runtime": runtime}):
        assert conf.get_runtime() is runtime
        assert conf.get_api() is conf.get_api()
    with (
        override_settings(OBSERVABILIPY={"runtime": "observabilipy.core.metrics.Registry"}),
        pytest.raises(ConfigurationError, match="must be an EmbeddedRuntime"),
    ):
        conf.get_runtime()
