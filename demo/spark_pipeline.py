"""The Spark side of the demo: a Structured Streaming job and a legacy DStream job, as processes.

    spark = SparkDemo("127.0.0.1:9092", data_dir=Path("demo-data")).start()
    spark.ui_url                 # structured job's driver UI, e.g. http://127.0.0.1:41234
    spark.monitor_spark_config() # {"ui_urls": [...], "progress_topic": "streamscope-progress"}
    spark.stop()

``start()`` creates the topics (input if missing, output, progress), launches
``python -m demo.spark_jobs.structured`` and ``python -m demo.spark_jobs.dstream`` each in its
own process group (logs in ``<data_dir>/spark/*.log``, UIs on free loopback ports), waits, with
a bounded deadline and progress lines on stderr, until each job's query/context runs and its UI
answers ``/api/v1/applications``, then starts the downstream consumer group
``clickstream-stats-reader`` on the output topic. ``stop()`` sends SIGTERM to each job (it stops
its query and exits), waits, then SIGKILLs whatever is left of its process group.
``kill_structured()`` simulates a driver crash (SIGKILL); ``start_structured()`` brings the job
back on the same checkpoint. Jobs also stop by themselves when the launching process dies
(``--exit-with-parent``), and an ``atexit`` hook stops any SparkDemo left running.

The structured job carries the streamscope listener (``collectors.spark_listener``): progress
events go to ``progress_topic`` and processed offsets to the group ``spark-<query name>``.
"""
from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import requests

from demo import jars
from demo.kafka_box import free_port, log_tail, port_is_free

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_START_TIMEOUT_SECONDS = 300.0  # a first pyspark start on a busy 2-core box takes 30-80 s
DEFAULT_STOP_TIMEOUT_SECONDS = 30.0
READER_GROUP = "clickstream-stats-reader"


class SparkDemoError(RuntimeError):
    """A Spark job did not start (its log tail is in the message) or could not be stopped."""


@dataclass
class SparkJob:
    """One launched Spark job process (its own process group)."""

    name: str
    module: str
    args: list[str]
    log_path: Path
    state_path: Path
    ui_port: int
    process: subprocess.Popen | None = None
    launched_at: float = 0.0
    ready_after: float | None = None
    state: dict = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def ui_url(self) -> str:
        return self.state.get("ui_url") or f"http://127.0.0.1:{self.ui_port}"

    @property
    def app_id(self) -> str | None:
        return self.state.get("app_id")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def read_state(self) -> dict:
        try:
            self.state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            pass
        return self.state


class SparkDemo:
    """Launches and stops the demo's Spark jobs (see the module docstring).

    Args:
        bootstrap: Kafka bootstrap servers.
        data_dir: parent of ``spark/`` (logs, checkpoints, scratch); a temp dir, removed by
            ``stop()``, when None. Reusing a dir resumes the queries from their checkpoints.
        trigger: the structured query's processing-time trigger.
        max_offsets_per_trigger: the structured query's per-batch cap (a burst becomes lag).
        dstream: also run the legacy DStream job.
        commit_offsets: the listener commits processed offsets to ``spark-<query_name>``.
        output_reader: run the ``clickstream-stats-reader`` consumer group on the output topic.
        start_timeout: seconds ``start()`` waits for both jobs, all told.
        progress: where start-up progress lines go (stderr; None for silence).
    """

    def __init__(self, bootstrap: str, data_dir: str | os.PathLike | None = None,
                 trigger: str = "5 seconds", max_offsets_per_trigger: int = 2000,
                 dstream: bool = True, *, input_topic: str = "clickstream",
                 output_topic: str = "clickstream-stats",
                 progress_topic: str = "streamscope-progress",
                 query_name: str = "clickstream_stats", commit_offsets: bool = True,
                 output_reader: bool = True, reader_group: str = READER_GROUP,
                 input_partitions: int = 6, output_partitions: int = 3,
                 dstream_batch_seconds: int = 2,
                 start_timeout: float = DEFAULT_START_TIMEOUT_SECONDS,
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS,
                 python: str | None = None, progress: TextIO | None = sys.stderr) -> None:
        self.bootstrap = bootstrap
        self.trigger = trigger
        self.max_offsets_per_trigger = max_offsets_per_trigger
        self.dstream = dstream
        self.input_topic, self.output_topic = input_topic, output_topic
        self.progress_topic = progress_topic
        self.query_name = query_name
        self.commit_offsets = commit_offsets
        self.output_reader = output_reader
        self.reader_group = reader_group
        self.input_partitions, self.output_partitions = input_partitions, output_partitions
        self.dstream_batch_seconds = dstream_batch_seconds
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.python = python or sys.executable
        self.progress = progress
        self._owns_data_dir = data_dir is None
        self._data_dir_arg = Path(data_dir).expanduser().resolve() if data_dir else None
        self.root: Path | None = None  # <data_dir>/spark
        self.jobs: dict[str, SparkJob] = {}
        self.reader = None
        self._jars: list[str] = []

    # ------------------------------------------------------------------ public API
    @property
    def ui_url(self) -> str:
        """The structured job's driver UI."""
        return self._job("structured").ui_url

    @property
    def ui_urls(self) -> list[str]:
        """Driver UIs of all jobs (structured first)."""
        return [job.ui_url for job in self.jobs.values()]

    @property
    def structured(self) -> SparkJob:
        return self._job("structured")

    @property
    def dstream_job(self) -> SparkJob | None:
        return self.jobs.get("dstream")

    @property
    def consumer_group(self) -> str:
        """The group the listener commits the structured query's offsets to."""
        return f"spark-{self.query_name}"

    def monitor_spark_config(self) -> dict:
        """The ``spark:`` section of streamscope's config for these jobs."""
        config: dict = {"ui_urls": self.ui_urls, "request_timeout_seconds": 5.0}
        if self.progress_topic:
            config["progress_topic"] = self.progress_topic
        return config

    def start(self) -> "SparkDemo":
        """Create topics, launch the jobs, wait until they run (bounded); raises SparkDemoError."""
        _LIVE_DEMOS.add(self)
        try:
            self._prepare()
            self._create_topics()
            self._launch("structured")
            if self.dstream:
                self._launch("dstream")
            self._wait_ready(list(self.jobs.values()), self.start_timeout)
            if self.output_reader:
                from demo.consumers import DemoConsumer  # noqa: PLC0415

                self.reader = DemoConsumer(self.bootstrap, self.output_topic, self.reader_group).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the reader and every job (SIGTERM, bounded wait, SIGKILL of the group)."""
        if self.reader is not None:
            try:
                self.reader.stop()
            finally:
                self.reader = None
        errors = []
        for job in reversed(list(self.jobs.values())):
            try:
                self._terminate(job, self.stop_timeout)
            except Exception as error:  # noqa: BLE001 - stop the others anyway
                errors.append(f"{job.name}: {error}")
        if self._owns_data_dir and self.root is not None:
            shutil.rmtree(self.root.parent, ignore_errors=True)
            self.root = None
        _LIVE_DEMOS.discard(self)
        if errors:
            raise SparkDemoError("; ".join(errors))

    def kill_structured(self) -> None:
        """SIGKILL the structured job's whole process group (a driver crash); no cleanup runs."""
        job = self._job("structured")
        if job.process is None:
            return
        _killpg(job.process.pid, signal.SIGKILL)
        try:
            job.process.wait(10)
        except subprocess.TimeoutExpired:
            raise SparkDemoError(f"structured job (pid {job.pid}) survived SIGKILL") from None

    def start_structured(self, timeout: float | None = None) -> None:
        """(Re)launch the structured job on its checkpoint and wait until it runs."""
        job = self._job("structured")
        if job.running():
            return
        self._launch("structured")
        self._wait_ready([self.jobs["structured"]], timeout or self.start_timeout)

    def pids(self, *names: str) -> set[int]:
        """Live processes in the jobs' process groups (Python drivers, JVMs, Python workers).

        ``names`` limits it to those jobs ("structured", "dstream"); all jobs by default.
        """
        groups = {job.pid for name, job in self.jobs.items()
                  if job.pid and (not names or name in names)}
        return {pid for pid in _all_pids() if _pgid(pid) in groups}

    def __enter__(self) -> "SparkDemo":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals
    def _job(self, name: str) -> SparkJob:
        try:
            return self.jobs[name]
        except KeyError:
            raise SparkDemoError(f"the {name} job was not started") from None

    def _say(self, message: str) -> None:
        log.info("%s", message)
        if self.progress is not None:
            print(f"[spark] {message}", file=self.progress, flush=True)

    def _prepare(self) -> None:
        if importlib.util.find_spec("pyspark") is None:
            raise jars.PrerequisiteMissing(
                "pyspark is not installed (pip install 'streamscope[spark]' or pyspark==4.2.0)")
        jars.java_executable()
        if not self._jars:
            self._jars = [str(path) for path in jars.spark_kafka_jars()]  # downloads on first use
        if self.root is None:
            base = self._data_dir_arg or Path(tempfile.mkdtemp(prefix="streamscope-spark-"))
            self.root = base / "spark"
        for sub in ("checkpoints", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _create_topics(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic  # noqa: PLC0415

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        wanted = {self.input_topic: self.input_partitions, self.output_topic: self.output_partitions}
        if self.progress_topic:
            wanted[self.progress_topic] = 1
        existing = set(admin.list_topics(timeout=15).topics)
        missing = [NewTopic(name, count, 1) for name, count in wanted.items() if name not in existing]
        if missing:
            for name, future in admin.create_topics(missing, request_timeout=30).items():
                try:
                    future.result(30)
                except Exception as error:  # noqa: BLE001
                    if "TOPIC_ALREADY_EXISTS" not in str(error):
                        raise SparkDemoError(f"cannot create topic {name}: {error}") from error
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # metadata reaches the broker's cache asynchronously
            topics = admin.list_topics(timeout=10).topics
            if all(name in topics and topics[name].error is None and topics[name].partitions
                   for name in wanted):
                return
            time.sleep(0.2)
        raise SparkDemoError(f"topics {sorted(wanted)} not visible after 30 s")

    def _command(self, name: str, ui_port: int, state_path: Path) -> tuple[str, list[str]]:
        assert self.root is not None
        common = ["--ui-port", str(ui_port), "--state-file", str(state_path), "--exit-with-parent",
                  "--local-dir", str(self.root / "tmp" / name),
                  "--checkpoint", str(self.root / "checkpoints" / name)]
        if name == "structured":
            args = [*common, "--bootstrap", self.bootstrap, "--input", self.input_topic,
                    "--output", self.output_topic, "--trigger", self.trigger,
                    "--max-offsets-per-trigger", str(self.max_offsets_per_trigger),
                    "--query-name", self.query_name, "--progress-topic", self.progress_topic or "",
                    "--jars", ",".join(self._jars)]
            if not self.commit_offsets:
                args.append("--no-commit-offsets")
            return "demo.spark_jobs.structured", args
        return "demo.spark_jobs.dstream", [*common, "--bootstrap", self.bootstrap,
                                           "--input", self.input_topic,
                                           "--batch-seconds", str(self.dstream_batch_seconds)]

    def _launch(self, name: str) -> SparkJob:
        assert self.root is not None
        previous = self.jobs.get(name)
        ui_port = previous.ui_port if previous and port_is_free(previous.ui_port) else free_port()
        taken = {job.ui_port for other, job in self.jobs.items() if other != name}
        while ui_port in taken:
            ui_port = free_port()
        state_path = self.root / f"{name}.state.json"
        state_path.unlink(missing_ok=True)
        module, args = self._command(name, ui_port, state_path)
        job = SparkJob(name=name, module=module, args=args, log_path=self.root / f"{name}.log",
                       state_path=state_path, ui_port=ui_port)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.setdefault("PYSPARK_PYTHON", self.python)
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        env["PYTHONUNBUFFERED"] = "1"
        with open(job.log_path, "ab") as log_file:
            log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {module}\n".encode())
            log_file.flush()
            job.process = subprocess.Popen(
                [self.python, "-m", module, *args], stdout=log_file, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.root, env=env, start_new_session=True)
        job.launched_at = time.monotonic()
        self.jobs[name] = job
        self._say(f"started Spark {name} job (pid {job.pid}, UI port {ui_port}, log {job.log_path})")
        return job

    def _wait_ready(self, jobs: list[SparkJob], timeout: float) -> None:
        """Until each job's state file says running and its UI lists the app; bounded."""
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + 15
        pending = list(jobs)
        while pending:
            for job in list(pending):
                if not job.running():
                    raise SparkDemoError(
                        f"Spark {job.name} job exited with code {job.process.returncode} during "
                        f"start-up; {job.log_path} ends with:\n{log_tail(job.log_path)}")
                if job.read_state().get("phase") == "running" and _ui_lists_app(job.ui_url):
                    job.ready_after = time.monotonic() - job.launched_at
                    pending.remove(job)
                    self._say(f"Spark {job.name} job ready after {job.ready_after:.1f} s: "
                              f"app {job.app_id}, UI {job.ui_url}")
            if not pending:
                return
            now = time.monotonic()
            if now >= deadline:
                names = ", ".join(job.name for job in pending)
                tails = "\n".join(f"--- {job.log_path}:\n{log_tail(job.log_path)}" for job in pending)
                raise SparkDemoError(f"Spark job(s) {names} not ready after {timeout:.0f} s\n{tails}")
            if now >= next_report:
                next_report = now + 15
                self._say("waiting for Spark " + ", ".join(
                    f"{job.name} ({now - job.launched_at:.0f} s, {job.state.get('phase', 'starting JVM')})"
                    for job in pending) + " ...")
            time.sleep(0.5)

    def _terminate(self, job: SparkJob, timeout: float) -> None:
        process = job.process
        if process is None:
            return
        if process.poll() is None:
            started = time.monotonic()
            try:
                os.kill(process.pid, signal.SIGTERM)  # the driver stops its query, then the JVM
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout)
                self._say(f"Spark {job.name} job stopped in {time.monotonic() - started:.1f} s")
            except subprocess.TimeoutExpired:
                self._say(f"Spark {job.name} job ignored SIGTERM for {timeout:.0f} s: killing it")
        # Whatever is left in the group (JVM, Python workers) goes too.
        _killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_alive(process.pid):
                return
            time.sleep(0.1)
        if process.poll() is None or _group_alive(process.pid):
            raise SparkDemoError(f"Spark {job.name} job (process group {process.pid}) survived SIGKILL")


# --------------------------------------------------------------------------- helpers
_LIVE_DEMOS: "weakref.WeakSet[SparkDemo]" = weakref.WeakSet()


@atexit.register
def _stop_live_demos() -> None:
    """Leave no Spark job behind when the interpreter exits without calling stop()."""
    for demo in list(_LIVE_DEMOS):
        try:
            demo.stop()
        except Exception:  # noqa: BLE001
            log.exception("stopping the Spark demo at exit failed")


def _ui_lists_app(ui_url: str) -> bool:
    try:
        response = requests.get(f"{ui_url}/api/v1/applications", timeout=10)
        return response.status_code == 200 and bool(response.json())
    except (requests.RequestException, ValueError):
        return False


def _killpg(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _all_pids() -> list[int]:
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:  # not Linux
        return []


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def _group_alive(pgid: int) -> bool:
    """True while a non-zombie process of group ``pgid`` exists."""
    for pid in _all_pids():
        if _pgid(pid) != pgid:
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    return True
        except OSError:
            continue
    return False
