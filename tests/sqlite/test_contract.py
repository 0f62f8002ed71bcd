"""Both SQLite storages pass core's storage contract: on a file, in memory, sharing one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from observabilipy.core.metrics import Registry
from observabilipy.core.testing import LogStorageContract, MetricsStorageContract
from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage


class TestLogStorageOnAFile(LogStorageContract):
    @pytest.fixture
    def log_storage(self, tmp_path: Path) -> Iterator[SQLiteLogStorage]:
        storage = SQLiteLogStorage(tmp_path / "obs.db")
        yield storage
        storage.close_sync()

    @pytest.fixture
    def reopen_log_storage(self, tmp_path: Path) -> Callable[[], SQLiteLogStorage]:
        return lambda: SQLiteLogStorage(tmp_path / "obs.db")


class TestLogStorageInMemory(LogStorageContract):
    @pytest.fixture
    def log_storage(self) -> Iterator[SQLiteLogStorage]:
        storage = SQLiteLogStorage(":memory:")
        yield storage
        storage.close_sync()


class TestLogStorageOnASharedDatabase(LogStorageContract):
    """The log storage of a file that a metrics storage writes too."""

    @pytest.fixture
    def log_storage(self, tmp_path: Path) -> Iterator[SQLiteLogStorage]:
        with SQLiteDatabase(tmp_path / "obs.db") as database:
            SQLiteMetricsStorage(database, registry=Registry())
            yield SQLiteLogStorage(database)


class TestMetricsStorageOnAFile(MetricsStorageContract):
    @pytest.fixture
    def metrics_storage(self, tmp_path: Path) -> Iterator[SQLiteMetricsStorage]:
        storage = SQLiteMetricsStorage(tmp_path / "obs.db", registry=Registry())
        yield storage
        storage.close_sync()

    @pytest.fixture
    def reopen_metrics_storage(self, tmp_path: Path) -> Callable[[], SQLiteMetricsStorage]:
        return lambda: SQLiteMetricsStorage(tmp_path / "obs.db", registry=Registry())


class TestMetricsStorageInMemory(MetricsStorageContract):
    @pytest.fixture
    def metrics_storage(self) -> Iterator[SQLiteMetricsStorage]:
        storage = SQLiteMetricsStorage(":memory:", registry=Registry())
        yield storage
        storage.close_sync()


class TestMetricsStorageOnASharedDatabase(MetricsStorageContract):
    @pytest.fixture
    def metrics_storage(self, tmp_path: Path) -> Iterator[SQLiteMetricsStorage]:
        with SQLiteDatabase(tmp_path / "obs.db") as database:
            SQLiteLogStorage(database)
            yield SQLiteMetricsStorage(database, registry=Registry())
