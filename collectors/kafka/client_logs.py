"""Client-library log levels, set without importing the client libraries."""
from __future__ import annotations

import logging


def quiet_kafka_client_logs(level: int = logging.INFO) -> None:
    """Client-library chatter below what the collector itself reports: librdkafka logs several
    lines a second while a broker is down (errors only), kafka-python logs every connection and
    I/O-loop start at INFO (warnings and up). Debug logging (`level` DEBUG) keeps everything."""
    if level <= logging.DEBUG:
        return
    logging.getLogger("streamscope.librdkafka").setLevel(max(level, logging.ERROR))
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))
    # kafka-python's event loop warns whenever decoding one large response (10,000 partitions'
    # offsets) takes over 0.1 s: expected here, where nothing else waits on that loop.
    logging.getLogger("kafka.net.selector").setLevel(max(level, logging.ERROR))
