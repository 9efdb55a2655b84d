"""`streamscope demo`: the whole demo pipeline and the monitor, started by one command."""
from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import click

from collectors.kafka.collector import quiet_kafka_client_logs
from demo.pipeline import DemoPipeline, DemoSettings


@click.command()
@click.option("--port", "web_port", type=int, default=8050, show_default=True, help="Web/metrics port.")
@click.option("--kafka-port", type=int, default=None, help="Broker port (default: a free one).")
@click.option("--rate", type=float, default=50.0, show_default=True, help="Producer base rate, messages/s.")
@click.option("--no-spark", is_flag=True, help="Skip the Spark jobs (Kafka, producer, consumers, monitor only).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where broker data, checkpoints and history go (default ~/.cache/streamscope/demo).")
@click.option("-v", "--verbose", count=True)
def demo(web_port, kafka_port, rate, no_spark, data_dir, verbose):
    """Start a local Kafka broker, a producer, consumer groups, Spark jobs and the monitor.

    First run: resolves Apache Kafka (and Spark connector) jars from Maven Central into
    ~/.cache/streamscope/jars. Ctrl-C stops everything.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_kafka_client_logs(logging.DEBUG if verbose else logging.INFO)
    data_dir = data_dir or Path.home() / ".cache" / "streamscope" / "demo"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = DemoSettings(kafka_port=kafka_port, web_port=web_port, data_dir=data_dir, rate=rate, spark=not no_spark)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pipeline = DemoPipeline(settings)
    click.echo("streamscope demo: starting Kafka broker (first run downloads jars; see progress below)...", err=True)
    try:
        pipeline.start()
        url = pipeline.monitor.web.url
        click.echo(
            "\nstreamscope demo is running:\n"
            f"  dashboard     {url}/\n"
            f"  metrics       {url}/metrics\n"
            f"  health        {url}/healthz\n"
            f"  JSON API      {url}/api/v1/clusters\n"
            f"  Kafka         {pipeline.bootstrap}  (topic clickstream; groups clickstream-archiver, clickstream-enricher-slow)\n"
            + (f"  Spark UI      {pipeline.spark.ui_url}\n" if pipeline.spark is not None else "")
            + "Type 'b' + Enter for a burst of 5,000 events; Ctrl-C stops everything.\n",
            err=True,
        )
        if sys.stdin is not None and sys.stdin.isatty():
            threading.Thread(target=_read_commands, args=(pipeline, stop), daemon=True).start()
        stop.wait()
    finally:
        click.echo("streamscope demo: stopping...", err=True)
        pipeline.stop()


def _read_commands(pipeline: DemoPipeline, stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip().lower() == "b" and pipeline.producer is not None:
            pipeline.producer.burst(5000)
            click.echo("burst: 5,000 events queued", err=True)
        if stop.is_set():
            return
