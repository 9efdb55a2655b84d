"""Alert detection latency, end to end: Kafka burst -> consumer lag -> monitor cycle -> rule ->
route -> Slack webhook.

Starts the demo pipeline (real Kafka broker, producer, consumer groups `clickstream-archiver`
(fast) and `clickstream-enricher-slow`; no Spark) and the monitor with built-in alerting: one rule
`consumer_lag_messages` on `clickstream-archiver` (threshold --threshold, `for` --for) routed to a
Slack receiver whose URL comes from an environment variable and points at a local HTTP server
playing Slack's incoming webhook. Then, per burst, `producer.burst(--burst-size)` and:

* detection latency = burst start -> the Slack receiver gets the `[FIRING:1]` message;
* resolve latency   = the first monitor snapshot with the group's lag back at/below the threshold
                      -> the `[RESOLVED]` message (also printed: from the burst having been fully
                      produced, and from the consumer having caught up as polled directly).

Where detection time goes (upper bound ~ commit + interval + for + group_wait + dispatch):
  * the consumer's offset commit (auto commit every 1 s in the demo): lag is committed-offset based;
  * the collection interval: the lag is seen at the next cycle (0..interval after it appears),
    plus the cycle's own duration (Kafka admin calls);
  * `for`: the rule has to be above threshold for that long (pending) before firing;
  * route `group_wait`: a new alert group waits this long before its first notification;
  * dispatch: the dispatcher thread is woken by the evaluation; then one HTTP POST.
Resolve: the next cycle sees lag <= threshold (0..interval) + keep_firing_for + group_interval
(a changed group is re-notified no sooner than group_interval after the last notification).

    python bench/bench_alert_latency.py --bursts 3 --interval 1
    python bench/bench_alert_latency.py --bursts 3 --interval 5
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GROUP = "clickstream-archiver"
RULE = "ArchiverLagHigh"
URL_ENV = "STREAMSCOPE_BENCH_SLACK_URL"


def arrival(hit):
    """(index, arrival time) of a request the Slack stand-in got, or None."""
    return (hit[0], hit[1].at) if hit else None


def alerting_section(rules_file: Path, *, group_wait: str, group_interval: str) -> dict:
    return {
        "receivers": {"slack": [{"name": "team-slack", "url_env": URL_ENV, "max_per_second": 10}]},
        "route": {"receivers": ["team-slack"], "group_by": ["alertname", "group"], "group_wait": group_wait,
                  "group_interval": group_interval, "repeat_interval": "1h"},
        "include_default_rules": False,
        "rules_files": [str(rules_file)],
        "delivery": {"initial_backoff": "200ms", "max_backoff": "1s"},
    }


def write_rules(path: Path, *, threshold: float, for_: str) -> Path:
    path.write_text(yaml.safe_dump({"rules": [{
        "name": RULE, "kind": "consumer_lag_messages", "threshold": threshold, "for": for_,
        "keep_firing_for": "0s", "matchers": [f'group="{GROUP}"'], "severity": "warning",
        "summary": "Consumer group {group} is {value_human} messages behind on {topic}",
    }]}))
    return path


def group_lag(snapshot, group: str = GROUP) -> int | None:
    if snapshot is None:
        return None
    for cluster in snapshot.clusters:
        for g in cluster.lag.groups:
            if g.group == group:
                return g.lag
    return None


class LagRecorder:
    """Records (snapshot time, lag of GROUP) for every monitor cycle."""

    def __init__(self, monitor) -> None:
        self.monitor = monitor
        self.samples: list[tuple[float, int | None]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        store = self.monitor.store
        seen = store.cycles
        while not self._stop.is_set():
            if store.wait_for_cycle(seen, 0.5):
                seen = store.cycles
                snap = store.latest()
                self.samples.append((snap.at, group_lag(snap)))

    def first_at_or_below(self, threshold: float, after: float) -> float | None:
        for at, lag in list(self.samples):
            if at > after and lag is not None and lag <= threshold:
                return at
        return None

    def cycles_above(self, threshold: float, after: float) -> int:
        return sum(1 for at, lag in list(self.samples) if at > after and (lag or 0) > threshold)

    def max_after(self, after: float) -> int:
        return max((lag or 0 for at, lag in list(self.samples) if at > after), default=0)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(2)


def committed_lag(bootstrap: str, topic: str = "clickstream", group: str = GROUP) -> int:
    """The group's lag read directly from Kafka (committed offsets vs high watermarks)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10)
        tps = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        committed = c.committed(tps, timeout=10)
        total = 0
        for tp in committed:
            _, high = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            total += max(0, high - max(tp.offset, 0))
        return total
    finally:
        c.close()


def run(args) -> dict:
    from tests.http_standin import RecordingReceiver
    from demo.kafka_box import free_port
    from demo.pipeline import DemoPipeline, DemoSettings

    tmp = Path(tempfile.mkdtemp(prefix="bench-alert-"))
    receiver = RecordingReceiver(path="/services/T000/B000/XXXX")
    os.environ[URL_ENV] = receiver.url
    rules = write_rules(tmp / "rules.yaml", threshold=args.threshold, for_=args.for_)
    settings = DemoSettings(spark=False, web_port=free_port(), data_dir=tmp, interval_seconds=args.interval,
                            rate=args.rate, extra={"alerting": alerting_section(
                                rules, group_wait=args.group_wait, group_interval=args.group_interval)})
    pipe = DemoPipeline(settings)
    results = []
    try:
        pipe.start()
        if not pipe.wait_for_cycles(3, 120):
            raise SystemExit("the monitor did not complete 3 collection cycles")
        lag = LagRecorder(pipe.monitor)
        for n in range(args.bursts):
            # quiet period: the group back at/below the threshold, no notification pending
            deadline = time.monotonic() + 120
            while (group_lag(pipe.monitor.store.latest()) or 0) > args.threshold and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(args.pause)
            index = len(receiver.requests)
            produced0 = pipe.producer.produced
            t0 = time.time()
            pipe.producer.burst(args.burst_size)
            produced = {}
            caught_up_at = None

            def watch_production(produced=produced, produced0=produced0, t0=t0):
                while time.time() - t0 < args.timeout:
                    if pipe.producer.produced - produced0 >= args.burst_size:
                        produced["at"] = time.time()
                        return
                    time.sleep(0.02)

            watcher = threading.Thread(target=watch_production, daemon=True)
            watcher.start()
            firing = arrival(receiver.wait_for_text("[FIRING", index, args.timeout))
            if firing is None:
                print(f"burst {n + 1}: no FIRING within {args.timeout}s (max lag seen {lag.max_after(t0)} on "
                      f"{lag.cycles_above(args.threshold, t0)} cycle(s) above the threshold; Slack got "
                      f"{receiver.texts()[index:]}); the lag must stay above the "
                      f"threshold on a cycle and past group_wait: raise --burst-size or lower --threshold",
                      flush=True)
                results.append(None)
                continue
            # direct poll of the committed lag (independent of the monitor) until caught up
            while caught_up_at is None and time.time() - t0 < args.timeout:
                if committed_lag(pipe.bootstrap) <= args.threshold:
                    caught_up_at = time.time()
                else:
                    time.sleep(0.1)
            resolved = arrival(receiver.wait_for_text("[RESOLVED", firing[0] + 1, args.timeout))
            watcher.join(args.timeout)
            produced_at = produced.get("at")
            if resolved is None:
                print(f"burst {n + 1}: no RESOLVED within {args.timeout}s", flush=True)
                results.append(None)
                continue
            seen_below = lag.first_at_or_below(args.threshold, firing[1])
            r = {
                "burst": n + 1, "max_lag": lag.max_after(t0), "cycles_above": lag.cycles_above(args.threshold, t0),
                "produce_s": (produced_at or float("nan")) - t0,
                "detect_s": firing[1] - t0,
                "resolve_from_seen_s": resolved[1] - seen_below if seen_below else float("nan"),
                "resolve_from_caught_up_s": resolved[1] - caught_up_at if caught_up_at else float("nan"),
                "resolve_from_produced_s": resolved[1] - (produced_at or t0),
                "firing_to_resolved_s": resolved[1] - firing[1],
                "messages": len(receiver.requests) - index,
            }
            results.append(r)
            print(f"burst {r['burst']}: max lag {r['max_lag']} ({r['cycles_above']} cycles above), produced in {r['produce_s']:.2f} s, "
                  f"detection {r['detect_s']:.2f} s, resolve {r['resolve_from_seen_s']:.2f} s after the monitor saw "
                  f"lag <= threshold ({r['resolve_from_caught_up_s']:.2f} s after the group caught up, "
                  f"{r['resolve_from_produced_s']:.2f} s after the burst was produced), "
                  f"{r['messages']} Slack messages", flush=True)
        lag.stop()
    finally:
        pipe.stop()
        receiver.close()
        os.environ.pop(URL_ENV, None)
    ok = [r for r in results if r]
    summary = {"interval": args.interval, "for": args.for_, "group_wait": args.group_wait,
               "group_interval": args.group_interval, "bursts": len(results), "ok": len(ok)}
    if ok:
        for key in ("detect_s", "resolve_from_seen_s", "resolve_from_caught_up_s", "resolve_from_produced_s"):
            values = [r[key] for r in ok]
            summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        print(f"median over {len(ok)} bursts (interval {args.interval}s, for {args.for_}, group_wait "
              f"{args.group_wait}): detection {summary['detect_s']['median']:.2f} s "
              f"[{summary['detect_s']['min']:.2f}..{summary['detect_s']['max']:.2f}], resolve "
              f"{summary['resolve_from_seen_s']['median']:.2f} s after the monitor saw lag <= threshold "
              f"[{summary['resolve_from_seen_s']['min']:.2f}..{summary['resolve_from_seen_s']['max']:.2f}], "
              f"{summary['resolve_from_caught_up_s']['median']:.2f} s after the group caught up", flush=True)
    summary["per_burst"] = results
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bursts", type=int, default=3)
    p.add_argument("--burst-size", type=int, default=60000)
    p.add_argument("--threshold", type=float, default=1000)
    p.add_argument("--interval", type=float, default=1.0, help="collection interval, seconds")
    p.add_argument("--for", dest="for_", default="0s")
    p.add_argument("--group-wait", default="1s")
    p.add_argument("--group-interval", default="1s")
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--pause", type=float, default=2.0, help="quiet seconds before each burst")
    p.add_argument("--timeout", type=float, default=90.0)
    p.add_argument("--json", help="also write the summary to this file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    summary = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["ok"] == summary["bursts"] else 1


if __name__ == "__main__":
    sys.exit(main())
