"""The ``observabilipy`` command: ``tail``, ``metrics``, ``query``, ``serve`` and ``top``.

Every error a user can meet (an unreachable URL, a refused token, a missing
or corrupt file, a bad ``--since``) is one line on stderr and a non-zero exit
status, never a traceback: 1 for errors, 2 for usage mistakes.  Ctrl-C stops
``tail --follow``, ``metrics --watch``, ``serve`` and ``top`` (exit status 0:
that is how they are meant to end) and interrupts any other command (exit
status 130, the shell's convention, since its output is incomplete).

Shell completion comes from click: ``eval "$(_OBSERVABILIPY_COMPLETE=bash_source
observabilipy)"`` in ``~/.bashrc`` (``zsh_source``, ``fish_source`` for the others).

>>> from click.testing import CliRunner
>>> result = CliRunner().invoke(main, ["query", "no-such.db"])
>>> result.exit_code, result.output
(1, 'Error: no-such.db: no such file\\n')
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn

import click

from observabilipy.cli.errors import CLIError
from observabilipy.cli.exposition import format_value
from observabilipy.cli.times import format_time, parse_since

if TYPE_CHECKING:
    from observabilipy.cli.client import Endpoint, LogLine
    from observabilipy.cli.exposition import Sample

__all__ = ["main"]

_CONTEXT: Final = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_LEVELS: Final = "DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL, in any case"


class _Group(click.Group):
    """A click group whose every error is one line on stderr (click's usage errors are four)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit with its status (see the module docstring)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            status = super().main(args, prog_name or "observabilipy", complete_var, False, **extra)
        except click.Abort:
            # Ctrl-C in a command that has no clean end of its own: interrupted.
            sys.exit(130)
        except click.ClickException as error:
            message = error.format_message().strip().replace("\n", " ")
            if isinstance(error, click.UsageError) and error.ctx is not None:
                message += f" (see '{error.ctx.command_path} --help')"
            click.echo(f"Error: {message}", err=True)
            sys.exit(error.exit_code)
        sys.exit(status if isinstance(status, int) else 0)


def _level(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A level option in canonical form (WARN means WARNING)."""
    if value is None:
        return None
    from observabilipy.core.levels import normalize_level

    try:
        return normalize_level(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not one of {_LEVELS}") from None


def _since(value: str | None) -> float | None:
    """The Unix time a ``--since`` value names; a bad one is a one-line error."""
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as error:
        raise CLIError(str(error)) from None


def _auth(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the commands that read a running application's API."""
    command = click.option(
        "--user",
        envvar="OBSERVABILIPY_USER",
        metavar="NAME:PASSWORD",
        help="HTTP basic credentials for the API's access check [env: OBSERVABILIPY_USER].",
    )(command)
    return click.option(
        "--token",
        envvar="OBSERVABILIPY_TOKEN",
        help="Bearer token for the API's access check [env: OBSERVABILIPY_TOKEN].",
    )(command)


def _interval(default: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--interval",
        type=click.FloatRange(min=0.05),
        default=default,
        show_default=True,
        help="Seconds between two polls.",
    )


_COLOR = click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour levels: auto colours on a terminal unless NO_COLOR is set.",
)


def _endpoint(url: str, token: str | None, user: str | None) -> Endpoint:
    from observabilipy.cli.client import Endpoint

    return Endpoint(url, token=token, user=user)


@click.group(name="observabilipy", cls=_Group, context_settings=_CONTEXT)
@click.version_option(package_name="observabilipy-cli", prog_name="observabilipy")
def main() -> None:
    """Logs, metrics and storage of observabilipy, from the terminal.

    URL is where an application mounts the observabilipy HTTP API, such as
    http://127.0.0.1:8000/observability (a route's URL such as .../logs works too).
    """


# -- tail ----------------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("url")
@click.option("--level", callback=_level, help="Only entries of this level.")
@click.option("--min-level", callback=_level, help="Only entries of this level or more severe.")
@click.option("--grep", metavar="TEXT", help="Only entries whose message contains TEXT (any case).")
@click.option(
    "--since", metavar="WHEN", help="Only entries after WHEN: 30s, 10m, 2h, 1d or an ISO-8601 time."
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing entries as they arrive.")
@_interval(1.0)
@click.option(
    "--format",
    "output",
    type=click.Choice(["pretty", "json"]),
    default="pretty",
    show_default=True,
    help="pretty: time, level, message, attributes; json: the API's NDJSON lines.",
)
@_COLOR
@_auth
def tail(
    url: str,
    level: str | None,
    min_level: str | None,
    grep: str | None,
    since: str | None,
    follow: bool,
    interval: float,
    output: str,
    color: str,
    token: str | None,
    user: str | None,
) -> None:
    """Print an application's log entries, oldest first; --follow keeps polling.

    Follows with the API's id cursor, so no entry is skipped or printed twice,
    and survives a server restart (it says "reconnecting" and goes on).

    \b
    Examples:
      observabilipy tail http://127.0.0.1:8000/observability --since 10m
      observabilipy tail http://127.0.0.1:8000/observability -f --min-level warning
    """
    from observabilipy.cli.render import log_line, use_colour

    filters = {"since": _since(since), "level": level, "min_level": min_level, "q": grep or None}
    colour = use_colour(color)
    out = sys.stdout

    def write(entry: LogLine) -> None:
        if output == "json":
            out.write(entry.raw + "\n")
        else:
            line = log_line(
                entry.timestamp, entry.level, entry.message, entry.attributes, colour=colour
            )
            out.write(line + "\n")

    with _endpoint(url, token, user) as endpoint:
        entries = _entries(endpoint, filters, follow=follow, interval=interval)
        try:
            for entry in entries:
                if entry is None:
                    out.flush()
                else:
                    write(entry)
        except KeyboardInterrupt:
            if not follow:
                raise
            # Ctrl-C is how --follow ends: a clean exit.


def _entries(
    endpoint: Endpoint, filters: dict[str, Any], *, follow: bool, interval: float
) -> Iterator[LogLine | None]:
    """Entries page after page, each page after the last id seen: none skipped, none twice.

    Without ``follow`` it ends at the first empty page.  With it, it polls every
    ``interval`` seconds.  None comes after each page (time to flush the
    output).  A server that stops answering after the first page is retried
    until it is back, saying "reconnecting" once on stderr.
    """
    from observabilipy.cli.client import TransientError

    after: int | None = None
    connected = False
    lost = False
    while True:
        got = 0
        try:
            for entry in endpoint.logs(after=after, **filters):
                after = entry.id
                got += 1
                yield entry
            connected = True
            if lost:
                click.echo(f"reconnected to {endpoint.base}", err=True)
                lost = False
        except TransientError as error:
            if not follow or not connected:
                raise
            if not lost:
                click.echo(f"{error.message}; reconnecting (Ctrl-C stops)", err=True)
                lost = True
            got = 0
        if got or follow:
            yield None  # a page is done: time to flush what was written
        if got:
            continue  # the next page may already be waiting
        if not follow:
            return
        time.sleep(interval)


# -- metrics -------------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("url")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="NAME|LABEL=VALUE",
    help="Keep samples of a metric (http_requests_total, http_*) or with a label "
    "(route=/users/{id}); repeat it: any name, every label.",
)
@click.option("--watch", is_flag=True, help="Redraw the table every --interval seconds.")
@_interval(2.0)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table, or a JSON array of {name, labels, value, type}.",
)
@_auth
def metrics(
    url: str,
    filters: tuple[str, ...],
    watch: bool,
    interval: float,
    output: str,
    token: str | None,
    user: str | None,
) -> None:
    """Show an application's current metrics (from /metrics/prometheus) as a table.

    \b
    Examples:
      observabilipy metrics http://127.0.0.1:8000/observability
      observabilipy metrics http://127.0.0.1:8000/observability --filter route=/users/{id} --watch
    """
    from observabilipy.cli.client import TransientError
    from observabilipy.cli.exposition import filter_samples

    with _endpoint(url, token, user) as endpoint:
        if not watch:
            _print_samples(filter_samples(endpoint.samples(), filters), output)
            return
        first = filter_samples(endpoint.samples(), filters)  # an error here ends the command
        out = sys.stdout
        lost = False
        try:
            samples: list[Sample] | None = first
            while True:
                if samples is not None:
                    if out.isatty():
                        click.clear()
                    click.echo(f"{endpoint.base} at {format_time(time.time())}")
                    _print_samples(samples, output)
                    click.echo()
                time.sleep(interval)
                try:
                    samples = filter_samples(endpoint.samples(), filters)
                    if lost:
                        click.echo(f"reconnected to {endpoint.base}", err=True)
                        lost = False
                except TransientError as error:
                    samples = None
                    if not lost:
                        click.echo(f"{error.message}; reconnecting (Ctrl-C stops)", err=True)
                        lost = True
        except KeyboardInterrupt:
            return  # Ctrl-C is how --watch ends


def _print_samples(samples: list[Sample], output: str) -> None:
    from observabilipy.cli.exposition import format_labels
    from observabilipy.cli.render import escape, table

    if output == "json":
        import json

        documents = [
            {"name": s.name, "labels": s.labels, "value": _json_number(s.value), "type": s.type}
            for s in samples
        ]
        click.echo(json.dumps(documents, ensure_ascii=False, indent=1))
        return
    if not samples:
        click.echo("no metrics matched", err=True)
        return
    rows = [
        [s.name, escape(format_labels(s.labels)), format_value(s.value), s.type] for s in samples
    ]
    click.echo(table(["NAME", "LABELS", "VALUE", "TYPE"], rows))


def _json_number(value: float) -> float | str:
    """A value for JSON: NaN and infinities as the strings the HTTP API writes."""
    return value if math.isfinite(value) else format_value(value)


# -- query ---------------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("db_path", metavar="DB_PATH")
@click.argument("what", type=click.Choice(["logs", "metrics"]), default="logs", required=False)
@click.option(
    "--since", metavar="WHEN", help="Only rows after WHEN: 30s, 10m, 2h, 1d or an ISO-8601 time."
)
@click.option("--level", callback=_level, help="logs: only entries of this level.")
@click.option(
    "--min-level", callback=_level, help="logs: only entries of this level or more severe."
)
@click.option("--grep", metavar="TEXT", help="logs: only messages containing TEXT (any case).")
@click.option("--name", metavar="METRIC", help="metrics: only samples of this metric or family.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many rows.")
@click.option("--newest", is_flag=True, help="Newest rows first (default: oldest first).")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "ndjson"]),
    default="table",
    show_default=True,
    help="table, one JSON array, or one JSON object per line (as the HTTP API writes them).",
)
@click.option("--explain", is_flag=True, help="Print the SQL and SQLite's plan instead of rows.")
@_COLOR
def query(
    db_path: str,
    what: str,
    since: str | None,
    level: str | None,
    min_level: str | None,
    grep: str | None,
    name: str | None,
    limit: int | None,
    newest: bool,
    output: str,
    explain: bool,
    color: str,
) -> None:
    """Read logs (default) or metrics straight from a SQLite file, read-only.

    The file is never created, migrated or written: a copy from another
    machine can be inspected as it is.  Rows stream: any size, flat memory.

    \b
    Examples:
      observabilipy query app.db --level error --limit 100
      observabilipy query app.db --since 1h --grep timeout --format ndjson
      observabilipy query app.db metrics --name http_requests_total --newest --limit 10
    """
    from observabilipy.cli import query as queries
    from observabilipy.cli.render import use_colour

    if what == "metrics":
        wrong = [
            o for o, v in (("--level", level), ("--min-level", min_level), ("--grep", grep)) if v
        ]
        if wrong:
            raise CLIError(f"{', '.join(wrong)}: for logs; metrics take --name, --since, --limit")
        filters: dict[str, Any] = {"since": _since(since), "name": name}
    else:
        if name is not None:
            raise CLIError("--name: for metrics (observabilipy query DB_PATH metrics --name ...)")
        filters = {"since": _since(since), "level": level, "min_level": min_level, "grep": grep}
    if name is not None:
        from observabilipy.core.models import validate_metric_name

        try:
            validate_metric_name(name, field="--name")
        except ValueError as error:
            raise CLIError(str(error)) from None
    filters.update(limit=limit, newest=newest)
    database = queries.open_database(db_path)
    try:
        out = sys.stdout
        if explain:
            if what == "metrics":
                sql, params = queries.metrics_query(**filters)
            else:
                sql, params = queries.log_query(json_rows=output != "table", **filters)
            click.echo(sql)
            click.echo(f"-- parameters: {params}")
            for line in queries.explain(database, sql, params):
                click.echo(f"-- {line}")
        elif what == "metrics":
            queries.write_metrics(database, out, output=output, **filters)
        else:
            colour = output == "table" and use_colour(color)
            queries.write_logs(database, out, output=output, colour=colour, **filters)
        out.flush()
    finally:
        database.close()


# -- serve ---------------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("db_path", metavar="DB_PATH")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--token",
    envvar="OBSERVABILIPY_TOKEN",
    help="Require this bearer token on every route but /health [env: OBSERVABILIPY_TOKEN].",
)
def serve(db_path: str, host: str, port: int, token: str | None) -> None:
    """Serve the HTTP API (and dashboard) over a SQLite file, read-only, until Ctrl-C.

    For inspecting a file copied from another machine with the tools that
    read a live application: tail, metrics, top, a browser, curl.

    \b
    Example:
      observabilipy serve copy-of-prod.db --port 0
    """
    from observabilipy.cli.query import open_database
    from observabilipy.cli.serve import APIServer
    from observabilipy.core.http import ROUTES, ObservabilityAPI, bearer_token
    from observabilipy.core.http.api import DASHBOARD
    from observabilipy.core.metrics import Registry
    from observabilipy.sqlite import SQLiteLogStorage, SQLiteMetricsStorage

    database = open_database(db_path)
    try:
        # An empty registry: the exposition shows the file's metrics, not this process's.
        registry = Registry()
        api = ObservabilityAPI(
            log_storage=SQLiteLogStorage(database),
            metrics_storage=SQLiteMetricsStorage(database, registry=registry),
            registry=registry,
            access=bearer_token(token) if token else None,
        )
        try:
            server = APIServer(api, host=host, port=port)
        except OSError as error:
            hint = "; pass --port 0 for a free one" if port else ""
            raise CLIError(
                f"cannot listen on {host}:{port}: {error.strerror or error}{hint}"
            ) from None
        with server:
            click.echo(f"Serving {db_path} (read-only) at {server.url}")
            routes = ", ".join(route.lstrip("/") for route in (*ROUTES, DASHBOARD))
            click.echo(f"Routes: {routes}; dashboard: {server.url}{DASHBOARD.lstrip('/')}")
            click.echo("Ctrl-C stops.")
            _stop_on_sigterm()
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                click.echo("stopped", err=True)
    finally:
        database.close()


def _stop_on_sigterm() -> None:
    """Let ``kill`` (SIGTERM) stop the server as Ctrl-C does: connections closed, file closed."""

    def stop(signum: int, frame: object) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


# -- top -----------------------------------------------------------------------------------------


@main.command(context_settings=_CONTEXT)
@click.argument("url")
@_interval(1.0)
@click.option(
    "--since",
    metavar="WHEN",
    default="1h",
    show_default=True,
    help="Show log entries from WHEN on: 30s, 10m, 2h, 1d or an ISO-8601 time.",
)
@_auth
def top(url: str, interval: float, since: str, token: str | None, user: str | None) -> None:
    """Live metrics and logs in the terminal (needs the tui extra).

    Keys: a/i/w/e/c show all, INFO+, WARNING+, ERROR+ or CRITICAL entries;
    p pauses; q quits.

    \b
    Example:
      observabilipy top http://127.0.0.1:8000/observability
    """
    try:
        from observabilipy.cli.tui import TopApp
    except ImportError as error:
        raise CLIError(str(error)) from None
    start = _since(since)
    with _endpoint(url, token, user) as endpoint:
        endpoint.samples()  # an unreachable or wrong URL is an error now, not a blank screen
        try:
            TopApp(endpoint, interval=interval, since=start).run()
        except KeyboardInterrupt:
            return
