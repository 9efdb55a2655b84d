"""The Slack / webhook stand-in the alert tests and the latency benchmark rely on."""
from __future__ import annotations

import pytest
import requests

from tests.http_standin import RecordingReceiver


def test_answers_from_its_script_then_200_and_records_everything():
    with RecordingReceiver([(429, {"Retry-After": "3"})], path="/hooks/x") as receiver:
        first = requests.post(receiver.url, json={"text": "[FIRING:1] A"}, timeout=5)
        second = requests.post(receiver.url, json={"text": "[RESOLVED] A"}, timeout=5)
        assert (first.status_code, first.headers["Retry-After"], second.status_code, second.text) == (429, "3", 200, "ok")
        got = receiver.requests
        assert [(r.path, r.status, r.text) for r in got] == [("/hooks/x", 429, "[FIRING:1] A"),
                                                               ("/hooks/x", 200, "[RESOLVED] A")]
        assert got[0].at <= got[1].at and got[1].json() == {"text": "[RESOLVED] A"}
        assert [i for i, _ in receiver.with_text_prefix("[RESOLVED")] == [1]
        assert receiver.wait_for_text("[FIRING", start=0, timeout=1)[0] == 0
        assert receiver.wait_for_text("[FIRING", start=1, timeout=0.2) is None  # none after index 0


def test_hang_accepts_requests_without_answering_until_release():
    with RecordingReceiver() as receiver:
        receiver.hang()
        with pytest.raises(requests.ReadTimeout):
            requests.post(receiver.url, json={"text": "[FIRING:1] A"}, timeout=0.5)
        assert receiver.wait_for_text("[FIRING", start=0, timeout=5)[0] == 0  # it did arrive
        receiver.release()
        r = requests.post(receiver.url, json={"text": "[FIRING:1] A"}, timeout=5)
        assert (r.status_code, r.text, len(receiver.requests)) == (200, "ok", 2)
