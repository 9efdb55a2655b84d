"""The end-to-end probe's bookkeeping (collectors.kafka.probe): a round's records, acknowledgements,
returns and commit, the counters and histograms it feeds; and the every-N-cycles schedule of the
costly phases (collectors.kafka.topic_state). Pure, times injected."""
from __future__ import annotations

import pytest

from collectors.kafka.probe import LatencyHistogram, ProbeRecorder, ProbeRound, is_probe_group, probe_group
from collectors.kafka.topic_state import Every


def test_histogram_is_cumulative_like_prometheus():
    h = LatencyHistogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0, -1.0):  # a bound is inclusive (le); a negative clock step is 0
        h.observe(seconds)
    frozen = h.frozen()
    assert (frozen.bounds, frozen.counts, frozen.count) == ((0.1, 1.0), (3, 4, 5), 5)
    assert frozen.sum == pytest.approx(3.65)


def healthy_round(timeout=5.0) -> ProbeRound:
    r = ProbeRound(1, [0, 1], started=100.0, timeout=timeout)
    r.sent(0, 100.0)
    r.sent(1, 100.0)
    return r


def test_a_round_that_succeeds():
    r = healthy_round()
    r.got(0, 41, 100.02)
    r.acked(0, 100.03, None)  # the acknowledgement can come after the record was read back
    r.got(0, 41, 100.05)  # a duplicate does not count twice
    r.got(1, 7, 100.04)
    assert r.all_received and not r.finished(100.04)
    r.commit_sent(100.04)
    r.committed(100.05, None)
    assert not r.finished(100.05)  # partition 1's acknowledgement is still out
    r.acked(1, 100.06, None)
    assert r.finished(100.06)
    assert r.failures() == {"produce": 0, "timeout": 0, "commit": 0} and r.error() is None
    assert r.roundtrip_latencies == pytest.approx([0.02, 0.04])
    assert r.produce_latencies == pytest.approx([0.03, 0.06])
    assert r.commit_latency == pytest.approx(0.01)


@pytest.mark.parametrize("case, events, failures, error", [
    ("the broker does not answer", [], {"produce": 0, "timeout": 2, "commit": 0},
     "2 of 2 record(s) not back within 5 s"),
    ("one record not produced", [("acked", 1, 101.0, "Local: Message timed out"), ("got", 0, 1, 100.5)],
     {"produce": 1, "timeout": 0, "commit": 0}, "1 record(s) not produced (Local: Message timed out)"),
    ("back too late", [("got", 0, 1, 100.5), ("got", 1, 1, 106.0)], {"produce": 0, "timeout": 1, "commit": 0},
     "1 of 2 record(s) not back within 5 s"),
    ("commit refused", [("got", 0, 1, 100.5), ("got", 1, 1, 100.5), ("commit_sent", 100.5),
                        ("committed", 100.6, "COORDINATOR_NOT_AVAILABLE")],
     {"produce": 0, "timeout": 0, "commit": 1}, "commit failed: COORDINATOR_NOT_AVAILABLE"),
    ("commit not confirmed in time", [("got", 0, 1, 100.5), ("got", 1, 1, 100.5), ("commit_sent", 100.5)],
     {"produce": 0, "timeout": 0, "commit": 1}, "commit not confirmed in time"),
])
def test_rounds_that_fail(case, events, failures, error):
    r = healthy_round()
    for name, *args in events:
        getattr(r, name)(*args)
    assert r.finished(105.0)
    assert r.failures() == failures, case
    assert r.error() == error, case


def test_recorder_counts_rounds_and_keeps_the_last_outcome():
    recorder = ProbeRecorder("probe")
    ok = healthy_round()
    for p in (0, 1):
        ok.acked(p, 100.01, None)
        ok.got(p, 1, 100.02)
    ok.commit_sent(100.02)
    ok.committed(100.03, None)
    recorder.record_round(ok, at=1000.0)
    stats = recorder.stats()
    assert (stats.up, stats.rounds_total, stats.sent_total, stats.received_total) == (True, 1, 2, 2)
    assert (stats.roundtrip.count, stats.produce.count, stats.commit.count) == (2, 2, 1)
    assert stats.last_success_at == 1000.0 and stats.error is None

    recorder.record_round(healthy_round(), at=1010.0)  # nothing came back
    recorder.record_setup_failure("KafkaException: all brokers down", at=1020.0)
    stats = recorder.stats()
    assert (stats.up, stats.rounds_total, stats.sent_total, stats.received_total) == (False, 3, 4, 2)
    assert dict(stats.failures) == {"setup": 1, "produce": 0, "timeout": 2, "commit": 0}
    assert (stats.last_round_at, stats.last_success_at) == (1020.0, 1000.0)
    assert stats.error == "setup: KafkaException: all brokers down"


def test_probe_group_names():
    assert probe_group("prod") == "streamscope-probe-prod"
    assert is_probe_group("streamscope-probe-prod") and not is_probe_group("orders")


@pytest.mark.parametrize("n, due", [(1, [True, True, True]), (3, [True, False, False, True, False]),
                                    (0, [False, False])])
def test_every(n, due):
    every = Every(n)
    assert [every.due() for _ in due] == due
