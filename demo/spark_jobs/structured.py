"""Demo Structured Streaming job: Kafka clickstream -> 1-minute windowed stats -> Kafka.

    python -m demo.spark_jobs.structured --bootstrap 127.0.0.1:9092 --input clickstream \\
        --output clickstream-stats --checkpoint /tmp/ckpt --ui-port 4040 \\
        --trigger "5 seconds" --progress-topic streamscope-progress

Reads the demo producer's JSON events (earliest offsets first, at most
``--max-offsets-per-trigger`` per micro-batch so a burst turns into visible lag), counts events,
distinct users and revenue per 1-minute event-time window, page and action with a 30-second
watermark (stateful), and writes each updated window as JSON to the output topic (``update``
mode). The query is named ``clickstream_stats``; the streamscope listener publishes its progress
to ``--progress-topic`` and commits its processed offsets to the group ``spark-clickstream_stats``.

Runs until SIGTERM/SIGINT (then stops the query, flushes the listener and exits 0) or until the
query fails (exit 1). ``--state-file`` receives the UI URL, app id and query id once running.
"""
from __future__ import annotations

import argparse
import sys
import time

from demo.spark_jobs import (StopFlag, loopback_environment, observable_conf, setup_logging,
                             ui_url_of, write_state)

QUERY_NAME = "clickstream_stats"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo.spark_jobs.structured",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap.servers")
    parser.add_argument("--input", default="clickstream", help="input topic")
    parser.add_argument("--output", default="clickstream-stats", help="output topic")
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory")
    parser.add_argument("--ui-port", type=int, default=4040)
    parser.add_argument("--trigger", default="5 seconds", help="processing-time trigger interval")
    parser.add_argument("--progress-topic", default="streamscope-progress",
                        help="topic for the streamscope listener ('' = no listener)")
    parser.add_argument("--no-commit-offsets", dest="commit_offsets", action="store_false",
                        help="do not commit processed offsets to the spark-<query> group")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=2000)
    parser.add_argument("--starting-offsets", default="earliest")
    parser.add_argument("--query-name", default=QUERY_NAME)
    parser.add_argument("--app-name", default="streamscope-demo-structured")
    parser.add_argument("--window", default="1 minute")
    parser.add_argument("--watermark", default="30 seconds")
    parser.add_argument("--shuffle-partitions", type=int, default=2)
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--local-dir", default=None, help="spark.local.dir (scratch space)")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the launching process goes away (used by SparkDemo)")
    parser.add_argument("--state-file", default=None, help="JSON file written once running")
    parser.add_argument("--jars", default=None,
                        help="comma-separated connector jars (default: resolved by demo.jars)")
    return parser.parse_args(argv)


def connector_jars(explicit: str | None) -> list[str]:
    if explicit:
        return [jar for jar in explicit.split(",") if jar]
    from demo import jars  # noqa: PLC0415

    return [str(path) for path in jars.spark_kafka_jars()]


def build_session(args: argparse.Namespace):
    from pyspark.sql import SparkSession  # noqa: PLC0415

    conf = observable_conf(app_name=args.app_name, ui_port=args.ui_port,
                           driver_memory=args.driver_memory, local_dir=args.local_dir,
                           extra_jars=connector_jars(args.jars))
    conf.update({
        "spark.sql.streaming.metricsEnabled": "true",
        "spark.sql.shuffle.partitions": str(args.shuffle_partitions),
        # query.stop() gives the micro-batch in flight this long, then interrupts it.
        "spark.sql.streaming.stopTimeout": "15000",
        # Fewer files per batch in the checkpoint's state store on a small box.
        "spark.sql.streaming.minBatchesToRetain": "20",
    })
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def build_query(spark, args: argparse.Namespace):
    from pyspark.sql import functions as F  # noqa: PLC0415
    from pyspark.sql.types import (DoubleType, StringType, StructField,  # noqa: PLC0415
                                   StructType)

    schema = StructType([
        StructField("event_id", StringType()),
        StructField("user_id", StringType()),
        StructField("page", StringType()),
        StructField("action", StringType()),
        StructField("country", StringType()),
        StructField("amount", DoubleType()),
        StructField("event_time", DoubleType()),  # UNIX seconds
    ])
    raw = (spark.readStream.format("kafka")
           .option("kafka.bootstrap.servers", args.bootstrap)
           .option("subscribe", args.input)
           .option("startingOffsets", args.starting_offsets)
           .option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
           .option("failOnDataLoss", "false")
           .option("kafka.client.id", f"spark-{args.query_name}")
           .load())
    events = (raw.select(F.from_json(F.col("value").cast("string"), schema).alias("e"))
              .select("e.*")
              .where(F.col("event_time").isNotNull())
              .withColumn("event_ts", F.timestamp_seconds(F.col("event_time")))
              .withColumn("page_group", F.regexp_replace("page", r"^/product/\d+$", "/product/*")))
    stats = (events.withWatermark("event_ts", args.watermark)
             .groupBy(F.window("event_ts", args.window), "page_group", "action")
             .agg(F.count(F.lit(1)).alias("events"),
                  F.approx_count_distinct("user_id").alias("users"),
                  F.round(F.sum("amount"), 2).alias("revenue"),
                  F.max("event_ts").alias("last_event_ts")))
    out = stats.select(
        F.concat_ws("|", "page_group", "action").alias("key"),
        F.to_json(F.struct(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            F.col("page_group").alias("page"),
            "action", "events", "users", "revenue", "last_event_ts",
        )).alias("value"))
    return (out.writeStream.format("kafka")
            .option("kafka.bootstrap.servers", args.bootstrap)
            .option("topic", args.output)
            .option("checkpointLocation", args.checkpoint)
            .outputMode("update")
            .queryName(args.query_name)
            .trigger(processingTime=args.trigger)
            .start())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = setup_logging("demo.structured")
    stop = StopFlag(exit_with_parent=args.exit_with_parent).install()
    loopback_environment()
    started = time.monotonic()
    spark = build_session(args)
    ui_url = ui_url_of(spark.sparkContext, args.ui_port)
    app_id = spark.sparkContext.applicationId
    log.info("SparkSession up in %.1f s: app %s, UI %s", time.monotonic() - started, app_id, ui_url)
    write_state(args.state_file, phase="session", app_id=app_id, ui_url=ui_url)

    listener = None
    if args.progress_topic:
        from collectors.spark_listener import attach  # noqa: PLC0415

        listener = attach(spark, bootstrap=args.bootstrap, topic=args.progress_topic,
                          commit_offsets=args.commit_offsets)
    query = build_query(spark, args)
    log.info("query %s started (id %s, run %s) in %.1f s since launch", args.query_name, query.id,
             query.runId, time.monotonic() - started)
    write_state(args.state_file, phase="running", app_id=app_id, ui_url=ui_url,
                query_name=args.query_name, query_id=str(query.id), run_id=str(query.runId))

    exit_code = 0
    try:
        while not stop.is_set():
            if query.awaitTermination(1):  # True once the query has stopped
                break
        if stop.is_set():
            log.info("%s: stopping query %s", stop.signal_name, args.query_name)
            query.stop()
            if listener is not None:
                listener.wait_terminated(query.id, 5.0)
        elif query.exception() is not None:
            exit_code = 1
    except Exception as error:  # StreamingQueryException: the query failed
        log.error("query %s failed: %s", args.query_name, error)
        exit_code = 1
    finally:
        if listener is not None:
            listener.close(5.0)
        spark.stop()
        log.info("stopped (exit %d)", exit_code)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
