"""`streamscope demo`: the whole demo pipeline and the monitor, started by one command."""
from __future__ import annotations

import logging
import os
import signal
import stat
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from collectors.kafka.client_logs import quiet_kafka_client_logs

if TYPE_CHECKING:
    from demo.pipeline import DemoPipeline


@click.command()
@click.option("--port", "web_port", type=int, default=8050, show_default=True, help="Web/metrics port.")
@click.option("--kafka-port", type=int, default=None, help="Broker port (default: a free one).")
@click.option("--rate", type=float, default=50.0, show_default=True, help="Producer base rate, messages/s.")
@click.option("--no-spark", is_flag=True, help="Skip the Spark jobs (Kafka, producer, consumers, monitor only).")
@click.option("--no-prometheus", is_flag=True, help="Do not start a Prometheus (started by default when installed).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where broker data, checkpoints and history go (default ~/.cache/streamscope/demo).")
@click.option("-v", "--verbose", count=True)
def demo(web_port, kafka_port, rate, no_spark, no_prometheus, data_dir, verbose):
    """Start a local Kafka broker, a producer, consumer groups, Spark jobs and the monitor with
    alerting (a local webhook inbox and SMTP sink as receivers) and a Prometheus scraping it.

    First run: resolves Apache Kafka (and Spark connector) jars from Maven Central into
    ~/.cache/streamscope/jars. Ctrl-C stops everything.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_kafka_client_logs(logging.DEBUG if verbose else logging.INFO)
    # Imported here: `streamscope run` mounts this command and must not load the Kafka clients.
    from demo.pipeline import DemoPipeline, DemoSettings

    data_dir = data_dir or Path.home() / ".cache" / "streamscope" / "demo"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = DemoSettings(kafka_port=kafka_port, web_port=web_port, data_dir=data_dir, rate=rate,
                            spark=not no_spark, prometheus=not no_prometheus)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pipeline = DemoPipeline(settings)
    click.echo("streamscope demo: starting Kafka broker (first run downloads jars; see progress below)...", err=True)
    try:
        pipeline.start()
        click.echo(summary(pipeline), err=True)
        if _interactive(sys.stdin):
            threading.Thread(target=_read_commands, args=(pipeline, stop), daemon=True).start()
        stop.wait()
    finally:
        click.echo("streamscope demo: stopping...", err=True)
        pipeline.stop()


def summary(pipeline: DemoPipeline) -> str:
    """What is running where, and what to try first (printed once everything is up)."""
    url = pipeline.monitor.web.url
    lines = ["", "streamscope demo is running:",
             f"  dashboard      {url}/",
             f"  alerts         {url}/alerts  (firing alerts and the notification log)",
             f"  metrics        {url}/metrics",
             f"  health         {url}/healthz",
             f"  JSON API       {url}/api/v1/alerts/notifications  (and /api/v1/alerts, /api/v1/clusters, "
             "/api/v1/spark/queries)",
             f"  Kafka          {pipeline.bootstrap}  (topic clickstream; groups clickstream-archiver, "
             "clickstream-enricher-slow)"]
    if pipeline.spark is not None:
        lines.append(f"  Spark UI       {pipeline.spark.ui_url}  (query clickstream_stats: clickstream -> "
                     "clickstream-stats)")
    receivers = pipeline.receivers
    if receivers is not None:
        lines.append(f"  webhook inbox  {receivers.inbox_url}  (what the webhook and the mail sink received)")
        lines.append(f"  SMTP sink      127.0.0.1:{receivers.smtp_port}" if receivers.smtp_port is not None
                     else f"  SMTP sink      none: {receivers.smtp_error}")
    if pipeline.prometheus is not None:
        lines.append(f"  Prometheus     {pipeline.prometheus.url}/alerts  (PromQL: "
                     f"{pipeline.prometheus.url}/graph?g0.expr=ALERTS)")
    elif pipeline.prometheus_note:
        lines.append(f"  Prometheus     {pipeline.prometheus_note}")
    lines += ["", "What to try first:",
              f"  1. Open {url}/ : the topology runs from the producers through clickstream to the groups"
              + (" and the Spark query, which writes clickstream-stats." if pipeline.spark is not None else "."),
              "  2. Within about a minute the slow group clickstream-enricher-slow passes 600 messages of lag:",
              f"     StreamscopeConsumerLagHigh fires on {url}/alerts, and its notification log shows it"]
    lines.append("     delivered to the webhook inbox and the SMTP sink." if receivers is not None
                 else "     (no local receivers in this run).")
    if pipeline.spark is not None:
        lines.append("  3. Type 'b' + Enter: a burst of 5,000 events; the Spark query's lag alert "
                     "(StreamscopeSparkQueryLag) fires, then resolves once the query has caught up.")
    else:
        lines.append("  3. Type 'b' + Enter: a burst of 5,000 events; watch the lag jump on the overview.")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines) + "\n"


def _interactive(stdin) -> bool:
    """Commands come from a terminal or a pipe (a script, a test); not from /dev/null or a file."""
    try:
        return stdin is not None and (stdin.isatty() or stat.S_ISFIFO(os.fstat(stdin.fileno()).st_mode))
    except (OSError, ValueError):
        return False


def _read_commands(pipeline: DemoPipeline, stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip().lower() == "b" and pipeline.producer is not None:
            pipeline.producer.burst(5000)
            click.echo("burst: 5,000 events queued", err=True)
        if stop.is_set():
            return
