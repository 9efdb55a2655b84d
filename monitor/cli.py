"""`streamscope` command line: a thin click layer over `monitor.app.Monitor` and `demo`."""
from __future__ import annotations

import importlib
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path

import click

from alerts.errors import AlertConfigError
from alerts.secrets import SecretError
from monitor import __version__
from monitor.app.config import Config, load_config
from monitor.settings import ConfigError
from monitor.storage import HistoryError
from monitor.app.preflight import RunCheck, validate_for_run, validate_for_serve

EXIT_CONFIG = 2
# What starting can still run into after validate_for_run (a port taken, a disk gone meanwhile):
# each is reported as one line and exit code 2, like a configuration error.
STARTUP_ERRORS = (ConfigError, HistoryError, AlertConfigError, SecretError, sqlite3.Error, OSError)

log = logging.getLogger(__name__)


def _setup_logging(verbose: int) -> None:
    from collectors.kafka.client_logs import quiet_kafka_client_logs

    level = logging.WARNING - 10 * verbose if verbose else logging.INFO
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_kafka_client_logs(level)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def _exit_with(problems: list[str] | tuple[str, ...]) -> None:
    """Print each problem as one line and exit with code 2."""
    for problem in problems:
        click.echo(f"streamscope: {problem}", err=True)
    sys.exit(EXIT_CONFIG)


def _load_for_run(config_path: Path | None, flags: dict[tuple[str, str], object],
                  validate=validate_for_run) -> tuple[Config, RunCheck]:
    """Load the config and validate everything `run` (or, with `validate_for_serve`, `serve`)
    needs; every command that starts something goes through this."""
    overrides: dict[str, dict] = {}
    for (section, key), value in flags.items():
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    bootstrap = overrides.pop("_", {}).get("bootstrap")
    try:
        config = load_config(config_path, overrides=overrides, bootstrap_servers=bootstrap)
    except ConfigError as exc:
        _exit_with(str(exc).splitlines())
    check = validate(config)
    if not check.ok:
        _exit_with(check.problems)
    return config, check


config_option = click.option("--config", "-c", "config_path", type=click.Path(path_type=Path),
                             envvar="STREAMSCOPE_CONFIG", help="YAML config file (env STREAMSCOPE_CONFIG).")


class _DemoCommandsWhenAsked(click.Group):
    """The demo package's commands (`kafka`, `demo`), imported when one is asked for (or listed
    by --help), not at the start: `monitor` does not depend on `demo`, and `run` never loads it."""

    demo_commands = {"kafka": ("demo.kafka_cli", "kafka"), "demo": ("demo.cli", "demo")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.demo_commands])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.demo_commands:
            module, command = self.demo_commands[name]
            return getattr(importlib.import_module(module), command)
        return super().get_command(ctx, name)


@click.group(cls=_DemoCommandsWhenAsked, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamscope")
def cli() -> None:
    """streamscope: observability for Kafka -> Spark streaming pipelines."""


@cli.command("check-config")
@config_option
@click.option("--bootstrap-servers", "-b", help="Kafka bootstrap servers (one cluster named 'default').")
@click.option("--fleet", "fleet_name", help="Check as `run --fleet NAME` would run.")
def check_config(config_path: Path | None, bootstrap_servers: str | None, fleet_name: str | None) -> None:
    """Validate everything `run` needs (secrets, rule files, history, Spark targets, the fleet)
    without starting anything; print it with secrets masked; exit 2 if invalid."""
    config, check = _load_for_run(config_path, {("_", "bootstrap"): bootstrap_servers, ("fleet", "name"): fleet_name})
    click.echo(f"configuration OK: {len(config.clusters)} Kafka cluster(s), "
               f"web on {config.web.host}:{config.web.port}, history at {config.history.path}")
    if config.fleet.enabled:
        fleet = config.fleet
        click.echo(f"fleet {fleet.name}: coordination topic {fleet.topic_name} ({fleet.partitions} partitions) on "
                   f"cluster {config.fleet_cluster.name}, session timeout {fleet.session_timeout_seconds:g} s")
    for note in _notes(config):
        click.echo(f"note: {note}")
    if config.alerting is not None:
        click.echo(f"alert rules: {check.alert_rules} loaded")
    for ref in check.secrets:
        click.echo(f"secret {ref.masked()}")


@cli.command()
@config_option
@click.option("--bootstrap-servers", "-b", help="Kafka bootstrap servers (one cluster named 'default').")
@click.option("--host", help="Web bind address (default 127.0.0.1).")
@click.option("--port", type=int, help="Web port (default 8050).")
@click.option("--interval", type=float, help="Seconds between collection cycles.")
@click.option("--history", "history_path", help="SQLite history file.")
@click.option("--fleet", "fleet_name", help="Join the fleet NAME: replicas share the work through Kafka "
                                            "(fleet: in the config, docs/scaling.md).")
@click.option("-v", "--verbose", count=True)
def run(config_path, bootstrap_servers, host, port, interval, history_path, fleet_name, verbose) -> None:
    """Collect, store, export and serve until SIGINT/SIGTERM."""
    _setup_logging(verbose)
    config, _ = _load_for_run(config_path, {
        ("_", "bootstrap"): bootstrap_servers, ("web", "host"): host, ("web", "port"): port,
        ("collection", "interval_seconds"): interval, ("history", "path"): history_path,
        ("fleet", "name"): fleet_name,
    })
    for note in _notes(config):
        log.warning("%s", note)
    serve(config)


def _notes(config) -> list[str]:
    """What the configuration leaves out or risks without being invalid."""
    return [*(note for cluster in config.clusters for note in cluster.notes()), *config.fleet.broker_default_notes()]


@cli.command("serve")
@config_option
@click.option("--prometheus-url", help="Prometheus HTTP API to read (sets history.backend: prometheus).")
@click.option("--host", help="Web bind address (default 127.0.0.1).")
@click.option("--port", type=int, help="Web port (default 8050).")
@click.option("-v", "--verbose", count=True)
def serve_command(config_path, prometheus_url, host, port, verbose) -> None:
    """Serve the dashboard and the JSON API over Prometheus, without collecting: one view of a
    fleet's replicas (docs/scaling.md). Until SIGINT/SIGTERM."""
    _setup_logging(verbose)
    flags: dict[tuple[str, str], object] = {("web", "host"): host, ("web", "port"): port}
    if prometheus_url:
        flags[("history", "backend")] = "prometheus"
        flags[("history", "prometheus")] = {"url": prometheus_url}
    config, _ = _load_for_run(config_path, flags, validate=validate_for_serve)

    def build():
        from monitor.app.dashboard import FleetDashboard

        return FleetDashboard(config)

    _serve_until_stopped(config, build)


def serve(config: Config, *, ready: threading.Event | None = None, stop: threading.Event | None = None) -> None:
    """`run`: collect, store, export and serve until stopped."""
    def build():
        from monitor.app.root import Monitor

        return Monitor(config)

    _serve_until_stopped(config, build, ready=ready, stop=stop)


def _serve_until_stopped(config: Config, build, *, ready: threading.Event | None = None,
                         stop: threading.Event | None = None) -> None:
    from collectors.memory import freeze_each_cycle, freeze_startup_objects, unmap_large_blocks
    from collectors.secret_masking import install_secret_masking
    from monitor.app.secrets import secret_values

    unmap_large_blocks()
    # Before anything connects: client libraries log credentials and webhook paths at DEBUG.
    install_secret_masking(secret_values(config))
    stop = stop or threading.Event()
    try:
        app = build()
    except STARTUP_ERRORS as exc:
        _startup_failed(exc)
    _install_signal_handlers(stop)
    freeze_startup_objects()  # built, nothing started: what exists now lives as long as the process
    freeze_each_cycle()  # and what each cycle builds to keep is frozen with it
    try:
        app.start()
    except STARTUP_ERRORS as exc:
        app.stop()
        _startup_failed(exc)
    try:
        click.echo(f"streamscope serving on {app.web.url}  (metrics: {app.web.url}/metrics, "
                   f"health: {app.web.url}/healthz)", err=True)
        if ready is not None:
            ready.set()
        stop.wait()
    finally:
        click.echo("streamscope: stopping", err=True)
        app.stop()


def _startup_failed(exc: BaseException) -> None:
    log.debug("startup failed", exc_info=exc)  # the traceback, for -vv
    _exit_with([f"cannot start: {' '.join(str(exc).split())}"])


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
