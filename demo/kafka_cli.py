"""``streamscope kafka start|stop|status``: a local broker for trying streamscope out.

A thin layer over ``demo.kafka_box``. ``start`` runs the broker in the background (detached),
records pids and ports in ``~/.cache/streamscope/run/kafka.json`` and returns once the broker
answers; ``stop`` reads that file. ``start --foreground`` stays attached until Ctrl-C.
`streamscope kafka`: `monitor.cli` imports this module when the command is asked for.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

from demo import jars
from demo.kafka_box import (MODES, KafkaBox, KafkaBoxError, default_state_file,
                            detached_status, stop_detached)

DEFAULT_PORT = 9092

_state_file_option = click.option(
    "--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Where pids/ports are recorded [default: ~/.cache/streamscope/run/kafka.json].")


@click.group(name="kafka")
def kafka() -> None:
    """Run a local single-node Apache Kafka broker (jars from Maven Central, cached)."""


@kafka.command()
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True,
              help="Broker port on 127.0.0.1 (0 = any free port).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Broker data and logs [default: ~/.cache/streamscope/run/kafka-data]; "
                   "kept between runs, so topics survive a stop/start.")
@click.option("--mode", type=click.Choice(MODES), default="kraft", show_default=True,
              help="kraft = Kafka 4.x; zookeeper = Kafka 3.9 with ZooKeeper.")
@click.option("--foreground", is_flag=True, help="Stay attached; Ctrl-C stops the broker.")
@_state_file_option
def start(port: int, data_dir: Path | None, mode: str, foreground: bool,
          state_file: Path | None) -> None:
    """Start the broker and wait until it answers."""
    state_path = state_file or default_state_file()
    status = detached_status(state_path)
    if status.get("running"):
        raise click.ClickException(
            f"a broker is already running at {status['bootstrap']} (pid {status['broker_pid']}); "
            "run `streamscope kafka stop` first")
    stop_detached(state_path)  # a stale record: clean up a leftover ZooKeeper, if any
    if data_dir is None:
        data_dir = jars.cache_root() / "run" / f"kafka-data-{mode}"
    box = KafkaBox(port=port or None, data_dir=data_dir, mode=mode, detached=not foreground)
    click.echo(f"starting Kafka ({mode}, data in {data_dir})...", err=True)
    try:
        box.start()
    except (KafkaBoxError, jars.PrerequisiteMissing) as error:
        raise click.ClickException(str(error)) from None
    box.write_state(state_path)
    click.echo(f"Kafka ready: bootstrap.servers={box.bootstrap}  (log: {box.log_path})")
    if foreground:
        _run_until_interrupted(box, state_path)
    else:
        click.echo("stop it with: streamscope kafka stop", err=True)


def _run_until_interrupted(box: KafkaBox, state_path: Path) -> None:
    """Block until Ctrl-C/SIGTERM or the broker dies, then stop everything."""
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: it may arrive ignored
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        while not stop_requested.wait(1.0):
            if not box.is_broker_running():
                click.echo(f"broker exited; see {box.log_path}", err=True)
                break
    finally:
        click.echo("stopping Kafka...", err=True)
        box.stop()
        state_path.unlink(missing_ok=True)


@kafka.command()
@_state_file_option
def stop(state_file: Path | None) -> None:
    """Stop the broker started by `start` (and its ZooKeeper)."""
    state = stop_detached(state_file)
    if state is None:
        click.echo("no Kafka broker recorded as running", err=True)
        return
    click.echo(f"stopped Kafka at {state['bootstrap']}")


@kafka.command()
@click.option("--json", "as_json", is_flag=True, help="Print the full state as JSON.")
@_state_file_option
def status(as_json: bool, state_file: Path | None) -> None:
    """Say whether the broker runs and answers; exit 1 if it does not."""
    current = detached_status(state_file)
    if as_json:
        click.echo(json.dumps(current, indent=1))
    elif current.get("ready"):
        click.echo(f"running: bootstrap.servers={current['bootstrap']} "
                   f"({current['mode']}, pid {current['broker_pid']}, log {current['log_path']})")
    elif current.get("running"):
        click.echo(f"started but not answering: {current['bootstrap']} (log {current['log_path']})")
    else:
        click.echo("not running")
    sys.exit(0 if current.get("ready") else 1)


if __name__ == "__main__":
    kafka()
