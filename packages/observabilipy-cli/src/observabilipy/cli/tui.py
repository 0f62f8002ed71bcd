"""``observabilipy top``: live metrics and a scrollable log viewer in the terminal (textual).

Needs the ``tui`` extra: ``pip install "observabilipy-cli[tui]"``.  The top
half is a table of the current metrics, refreshed every ``interval`` seconds
from ``/metrics/prometheus``; the bottom half shows log entries as they
arrive (read with the ``after`` cursor: none skipped or repeated), keeping
the newest ``max_entries``.  Keys: ``a`` ``i`` ``w`` ``e`` ``c`` show entries
of that level or more severe (all, INFO, WARNING, ERROR, CRITICAL), ``p``
pauses, ``q`` quits.  A server that stops answering is shown in the title
bar while polling goes on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import ClassVar, Final

try:
    from textual.app import App, ComposeResult
    from textual.binding import Binding, BindingType
    from textual.widgets import DataTable, Footer, Header, Log
except ImportError as error:  # pragma: no cover - exercised by the isolated install
    raise ImportError(
        'observabilipy top needs textual: pip install "observabilipy-cli[tui]"'
    ) from error

from observabilipy.cli.client import Endpoint, LogLine
from observabilipy.cli.errors import CLIError
from observabilipy.cli.exposition import Sample, format_labels, format_value
from observabilipy.cli.render import escape, log_line
from observabilipy.core.levels import severity

__all__ = ["TopApp"]

# Pages of /logs read per refresh at most, so a large backlog cannot freeze the screen.
_PAGES_PER_POLL: Final = 5


class TopApp(App[None]):
    """The ``top`` screen over ``endpoint``; ``since`` is where the log viewer starts."""

    TITLE = "observabilipy top"
    CSS = """
    #metrics { height: 1fr; }
    #logs { height: 1fr; border-top: solid $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "min_level('DEBUG')", "All levels"),
        Binding("i", "min_level('INFO')", "Info+"),
        Binding("w", "min_level('WARNING')", "Warning+"),
        Binding("e", "min_level('ERROR')", "Error+"),
        Binding("c", "min_level('CRITICAL')", "Critical"),
        Binding("p", "pause", "Pause"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        interval: float = 1.0,
        since: float | None = None,
        max_entries: int = 5_000,
    ) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._interval = interval
        self._since = since
        self._entries: deque[LogLine] = deque(maxlen=max_entries)
        self._after: int | None = None
        self._min_severity = 0
        self._min_level = "DEBUG"
        self._paused = False
        self._polling = False
        self._problem: str | None = None

    def compose(self) -> ComposeResult:
        """Header, metrics table, log viewer, key help."""
        yield Header()
        yield DataTable(id="metrics", cursor_type="row", zebra_stripes=True)
        yield Log(id="logs", max_lines=self._entries.maxlen)
        yield Footer()

    def on_mount(self) -> None:
        """Set the table's columns and start polling."""
        table = self.query_one("#metrics", DataTable)
        table.add_column("NAME", key="name")
        table.add_column("LABELS", key="labels")
        table.add_column("VALUE", key="value")
        table.add_column("TYPE", key="type")
        self._show_status()
        self.set_interval(self._interval, self.poll)
        self.call_later(self.poll)

    async def poll(self) -> None:
        """Fetch the metrics and the new log entries, then show them (skipped while paused)."""
        if self._polling or self._paused:
            return
        self._polling = True
        try:
            samples = await asyncio.to_thread(self._endpoint.samples)
            entries = await asyncio.to_thread(self._new_entries)
        except CLIError as error:
            self._problem = error.message
            return
        finally:
            self._polling = False
            self._show_status()
        self._problem = None
        self._show_samples(samples)
        self._add_entries(entries)
        self._show_status()

    def _new_entries(self) -> list[LogLine]:
        """Entries after the last one seen (runs in a worker thread)."""
        found: list[LogLine] = []
        for _ in range(_PAGES_PER_POLL):
            page = list(self._endpoint.logs(after=self._after, since=self._since))
            if not page:
                break
            self._after = page[-1].id
            found.extend(page)
        return found

    def _show_samples(self, samples: list[Sample]) -> None:
        table = self.query_one("#metrics", DataTable)
        seen = set()
        for sample in samples:
            key = sample.key
            seen.add(key)
            value = format_value(sample.value)
            if key in table.rows:
                table.update_cell(key, "value", value)
            else:
                labels = escape(format_labels(sample.labels))
                table.add_row(sample.name, labels, value, sample.type, key=key)
        for gone in [row for row in table.rows if row.value not in seen]:
            table.remove_row(gone)

    def _add_entries(self, entries: list[LogLine]) -> None:
        self._entries.extend(entries)
        viewer = self.query_one("#logs", Log)
        viewer.write_lines([self._line(entry) for entry in entries if self._shown(entry)])

    def _shown(self, entry: LogLine) -> bool:
        try:
            return severity(entry.level) >= self._min_severity
        except ValueError:
            return True  # a level this release does not know is never hidden

    @staticmethod
    def _line(entry: LogLine) -> str:
        return log_line(entry.timestamp, entry.level, entry.message, entry.attributes)

    def _show_status(self) -> None:
        parts = [self._endpoint.base, f"logs: {self._min_level}+"]
        if self._paused:
            parts.append("PAUSED")
        if self._problem:
            parts.append(f"retrying: {self._problem}")
        self.sub_title = "  |  ".join(parts)

    def action_min_level(self, level: str) -> None:
        """Show entries of ``level`` or more severe, from those kept."""
        self._min_level = level
        self._min_severity = severity(level)
        viewer = self.query_one("#logs", Log)
        viewer.clear()
        viewer.write_lines([self._line(entry) for entry in self._entries if self._shown(entry)])
        self._show_status()

    def action_pause(self) -> None:
        """Stop or resume refreshing (the screen stays still to be read)."""
        self._paused = not self._paused
        self._show_status()
