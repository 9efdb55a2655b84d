"""Demo legacy DStream job: a socket receiver, 2-second batches, a windowed reduce with checkpoints.

    python -m demo.spark_jobs.dstream --checkpoint /tmp/dstream-ckpt --ui-port 4041 \\
        [--bootstrap 127.0.0.1:9092 --input clickstream]

DStreams are deprecated in Spark 4 but still run in production; their driver UI is the only
one that answers ``/api/v1/applications/{id}/streaming/statistics|batches|receivers``.

Data path: a feeder thread in this process listens on a loopback socket; Spark's
``socketTextStream`` receiver connects to it. With ``--bootstrap`` the feeder forwards the
clickstream topic's JSON values (consumer group ``--group``, default
``clickstream-dstream-bridge``: the usual "Kafka -> socket bridge" of old DStream apps, so its
lag shows in streamscope too); without it, it makes up ``--rate`` events per second.

Per slide: events per action over a sliding window (``reduceByKeyAndWindow`` with an inverse
function: needs the checkpoint directory), logged. Kept deliberately light (one output
operation, one-second blocks, one partition): Python DStreams pay a fixed cost per task, and a
2-core box running Kafka and two Spark drivers has little to spare. Runs until SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import socket
import sys
import threading
import time

from demo.spark_jobs import (StopFlag, loopback_environment, observable_conf, setup_logging,
                             ui_url_of, write_state)

log = logging.getLogger("demo.dstream")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo.spark_jobs.dstream",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory")
    parser.add_argument("--ui-port", type=int, default=4041)
    parser.add_argument("--batch-seconds", type=int, default=2)
    parser.add_argument("--window-seconds", type=int, default=30)
    parser.add_argument("--slide-seconds", type=int, default=4)
    parser.add_argument("--block-interval-ms", type=int, default=1000)
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap.servers (feed from Kafka)")
    parser.add_argument("--input", default="clickstream", help="topic the feeder forwards")
    parser.add_argument("--group", default="clickstream-dstream-bridge",
                        help="consumer group of the Kafka -> socket feeder")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="synthetic events per second when no --bootstrap is given")
    parser.add_argument("--max-lines-per-second", type=float, default=500.0,
                        help="cap on what the feeder forwards (keeps batches small)")
    parser.add_argument("--app-name", default="streamscope-demo-dstream")
    parser.add_argument("--driver-memory", default="768m")
    parser.add_argument("--local-dir", default=None)
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the launching process goes away (used by SparkDemo)")
    parser.add_argument("--state-file", default=None)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- socket feeder
class SocketFeeder:
    """A one-client line server on 127.0.0.1 that Spark's socket receiver connects to.

    Lines come from Kafka (``bootstrap``) or are synthetic. Nothing is read from Kafka while no
    receiver is connected, so no data is lost between a receiver restart and the next connect.
    """

    def __init__(self, *, bootstrap: str | None, topic: str, group: str, rate: float,
                 max_lines_per_second: float) -> None:
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.rate = rate
        self.max_lines_per_second = max_lines_per_second
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(2)
        self._server.settimeout(0.5)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="socket-feeder", daemon=True)
        self._consumer = None
        self.sent = 0
        self._rng = random.Random(11)

    def start(self) -> "SocketFeeder":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        try:
            self._server.close()
        except OSError:
            pass

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    connection, _ = self._server.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                log.info("receiver connected to the feeder on port %d", self.port)
                with connection:
                    try:
                        self._serve(connection)
                    except OSError as error:  # receiver went away (restart, shutdown)
                        log.info("receiver disconnected: %s", error)
        finally:
            if self._consumer is not None:
                try:
                    self._consumer.close()
                except Exception:  # noqa: BLE001 - broker gone at shutdown
                    pass

    def _serve(self, connection: socket.socket) -> None:
        budget_started = time.monotonic()
        budget_sent = 0
        while not self._stop.is_set():
            lines = self._next_lines()
            if lines:
                connection.sendall(b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
                self.sent += len(lines)
                budget_sent += len(lines)
            ahead = budget_sent / self.max_lines_per_second - (time.monotonic() - budget_started)
            if ahead > 0:
                self._stop.wait(ahead)

    def _next_lines(self) -> list[bytes]:
        if self.bootstrap:
            return self._kafka_lines()
        self._stop.wait(0.1)
        count = int(self.rate * 0.1) + (1 if self._rng.random() < (self.rate * 0.1) % 1 else 0)
        return [self._synthetic() for _ in range(count)]

    def _kafka_lines(self) -> list[bytes]:
        if self._consumer is None:
            from confluent_kafka import Consumer  # noqa: PLC0415

            from collectors.spark_listener import _LibrdkafkaLog  # noqa: PLC0415

            self._consumer = Consumer({
                "bootstrap.servers": self.bootstrap, "group.id": self.group,
                "auto.offset.reset": "latest", "enable.auto.commit": True,
                "auto.commit.interval.ms": 2000, "client.id": "demo-dstream-feeder",
                "session.timeout.ms": 10000,
                "logger": _LibrdkafkaLog(name="demo.dstream.librdkafka"),
            })
            self._consumer.subscribe([self.topic])
        messages = self._consumer.consume(num_messages=200, timeout=0.2)
        return [m.value() for m in messages if m.error() is None and m.value()]

    def _synthetic(self) -> bytes:
        rng = self._rng
        event = {"user_id": f"user-{rng.randrange(5000):04d}",
                 "action": rng.choice(["view", "view", "click", "add_to_cart", "purchase"]),
                 "country": rng.choice(["DE", "FR", "US", "GB", "IN"]), "event_time": time.time()}
        return json.dumps(event).encode()


# --------------------------------------------------------------------------- the job
def _parse(line: str):
    try:
        event = json.loads(line)
    except ValueError:
        return []
    if not isinstance(event, dict):
        return []
    return [event]


def _log_window(batch_time, rdd) -> None:
    top = sorted(rdd.collect(), key=lambda kv: -kv[1])[:5]
    log.info("%s window counts by action: %s", batch_time, top)


def build_context(args: argparse.Namespace, feeder_port: int):
    from pyspark import SparkConf, SparkContext, StorageLevel  # noqa: PLC0415
    from pyspark.streaming import StreamingContext  # noqa: PLC0415

    conf = SparkConf()
    for key, value in observable_conf(app_name=args.app_name, ui_port=args.ui_port,
                                      driver_memory=args.driver_memory,
                                      local_dir=args.local_dir).items():
        conf.set(key, value)
    conf.set("spark.streaming.stopGracefullyOnShutdown", "false")
    conf.set("spark.python.worker.reuse", "true")
    # One block (= one partition, = one Python task) per second instead of per 200 ms: the
    # per-task overhead of Python dominates these small batches.
    conf.set("spark.streaming.blockInterval", f"{args.block_interval_ms}ms")
    conf.set("spark.default.parallelism", "1")
    sc = SparkContext(conf=conf)
    ssc = StreamingContext(sc, args.batch_seconds)
    ssc.checkpoint(args.checkpoint)

    lines = ssc.socketTextStream("127.0.0.1", feeder_port, StorageLevel.MEMORY_AND_DISK)
    events = lines.flatMap(_parse)
    by_action = events.map(lambda e: (str(e.get("action")), 1))
    windowed = by_action.reduceByKeyAndWindow(
        lambda a, b: a + b, lambda a, b: a - b,
        windowDuration=args.window_seconds, slideDuration=args.slide_seconds,
        numPartitions=1, filterFunc=lambda kv: kv[1] > 0)
    windowed.foreachRDD(_log_window)
    return sc, ssc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("demo.dstream")
    stop = StopFlag(exit_with_parent=args.exit_with_parent).install()
    loopback_environment()
    started = time.monotonic()
    feeder = SocketFeeder(bootstrap=args.bootstrap, topic=args.input, group=args.group,
                          rate=args.rate, max_lines_per_second=args.max_lines_per_second).start()
    sc, ssc = build_context(args, feeder.port)
    ui_url = ui_url_of(sc, args.ui_port)
    write_state(args.state_file, phase="session", app_id=sc.applicationId, ui_url=ui_url)
    ssc.start()
    log.info("StreamingContext started in %.1f s: app %s, UI %s, %d s batches", time.monotonic() - started,
             sc.applicationId, ui_url, args.batch_seconds)
    write_state(args.state_file, phase="running", app_id=sc.applicationId, ui_url=ui_url,
                batch_seconds=args.batch_seconds, feeder_port=feeder.port)
    exit_code = 0
    try:
        while not stop.is_set():
            if ssc.awaitTerminationOrTimeout(1):
                log.error("StreamingContext stopped on its own")
                exit_code = 1
                break
        if stop.is_set():
            log.info("%s: stopping", stop.signal_name)
    except Exception as error:  # noqa: BLE001 - a failed batch surfaces here
        log.error("streaming failed: %s", error)
        exit_code = 1
    finally:
        try:
            ssc.stop(stopSparkContext=True, stopGraceFully=False)
        finally:
            feeder.stop()
        log.info("stopped (exit %d), feeder sent %d lines", exit_code, feeder.sent)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
