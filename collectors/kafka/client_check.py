"""librdkafka's own verdict on the client properties of each cluster (`client:` and the resolved
`client_secrets:`), before anything is collected.

librdkafka checks property names and values, and loads the TLS files they name, when a client is
created, not when a config is loaded: an unknown property or a bad value otherwise passed
`check-config` and then failed every cycle of a running monitor ("Failed to create admin
client"). The check creates an admin client per cluster without brokers (nothing connects, no
name is resolved) and drops it. It runs in a child process: the monitor's own process never
loads the Kafka client libraries (collectors.kafka.process).

    python -m collectors.kafka.client_check   # a JSON list of property maps on stdin, verdicts out
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

CHECK_TIMEOUT_SECONDS = 60.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def client_problems(configs: Sequence[Mapping[str, object]]) -> list[str | None]:
    """Per property map, None when librdkafka accepts it, else its error. In this process."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    out: list[str | None] = []
    for conf in configs:
        try:
            AdminClient({**conf, "logger": _QUIET})
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            out.append(error.str() if hasattr(error, "str") else str(error))
        except (TypeError, ValueError) as exc:  # a value of a type librdkafka does not take
            out.append(str(exc))
        else:
            out.append(None)
    return out


def check_in_child(configs: Sequence[Mapping[str, object]]) -> list[str | None]:
    """`client_problems` in a child process (secrets go through its stdin, never its command
    line). RuntimeError when the check itself could not run."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run([sys.executable, "-m", "collectors.kafka.client_check"], input=json.dumps(list(configs)),
                              capture_output=True, text=True, timeout=CHECK_TIMEOUT_SECONDS, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"the check did not run: {exc}") from None
    try:
        verdicts = json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:
        verdicts = None
    if not isinstance(verdicts, list) or len(verdicts) != len(configs):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the check failed (exit code {done.returncode}): {last}")
    return verdicts


class _Quiet:
    """A logger for librdkafka's lines during the check (a consumer-only property on an admin
    client is a warning there, not an error)."""

    def log(self, *args, **kwargs) -> None:
        pass


_QUIET = _Quiet()


if __name__ == "__main__":
    json.dump(client_problems(json.load(sys.stdin)), sys.stdout)
