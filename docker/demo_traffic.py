"""Demo traffic for docker-compose.yml: topics, the clickstream producer and two consumer groups.

    python /opt/streamscope/docker/demo_traffic.py            # env: BOOTSTRAP_SERVERS, RATE, ...

The same parts `streamscope demo` starts in-process (demo.pipeline), as one container: creates
the topics (clickstream with 6 partitions, the Spark job's output and progress topics), produces
clickstream events at RATE messages/s (a slow sine swing around it), and runs the consumer groups
``clickstream-archiver`` (keeps up) and ``clickstream-enricher-slow`` (SLOW_RATE messages/s,
below the producer's peak: its lag grows, then drains). Writes READY_FILE once the topics exist
(the compose healthcheck), and stops cleanly on SIGTERM.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from demo.consumers import DemoConsumer
from demo.pipeline import INPUT_TOPIC, create_topics
from demo.producer import DemoProducer, RateProfile

log = logging.getLogger("demo-traffic")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bootstrap = os.environ.get("BOOTSTRAP_SERVERS", "kafka:9092")
    rate = float(os.environ.get("RATE", "50"))
    slow_rate = float(os.environ.get("SLOW_RATE", "45"))
    ready_file = Path(os.environ.get("READY_FILE", "/tmp/demo-traffic.ready"))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    ready_file.unlink(missing_ok=True)
    create_topics(bootstrap, {INPUT_TOPIC: 6, "clickstream-stats": 3, "streamscope-progress": 1})
    parts = [DemoProducer(bootstrap, INPUT_TOPIC, profile=RateProfile(base=rate)).start(),
             DemoConsumer(bootstrap, INPUT_TOPIC, "clickstream-archiver").start(),
             DemoConsumer(bootstrap, INPUT_TOPIC, "clickstream-enricher-slow", max_rate=slow_rate).start()]
    ready_file.write_text("ready\n")
    log.info("producing %.0f msg/s to %s on %s; groups clickstream-archiver, clickstream-enricher-slow",
             rate, INPUT_TOPIC, bootstrap)
    stop.wait()
    log.info("stopping")
    for part in reversed(parts):
        part.stop()
    ready_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
