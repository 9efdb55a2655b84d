"""A real Apache Kafka broker in a box: single node, loopback only, started from cached jars.

    with KafkaBox() as box:                         # Kafka 4.x, KRaft, free port, temp dir
        produce_to(box.bootstrap)                   # "127.0.0.1:PORT"
        box.stop_broker(); box.start_broker()       # outage, same port and data

    with KafkaBox(mode="zookeeper") as box: ...     # Kafka 3.9 + ZooKeeper

    with KafkaBox(sasl_users={"alice": "alice-secret"}) as box:
        box.sasl_bootstrap                          # a second listener: SASL_PLAINTEXT, PLAIN

The PLAINTEXT listener is always there (inter-broker traffic, readiness checks, test helpers);
``sasl_users`` adds a SASL/PLAIN listener whose users and passwords are set by JAAS in the
broker config (``listener.name.sasl_plaintext.plain.sasl.jaas.config``).

The broker is ``java -cp <jars> kafka.Kafka server.properties`` in its own process group,
logging (log4j to console) into ``<data_dir>/broker.log``. Ready means: metadata lists the
broker, the group coordinator answers an offset fetch (so a first commit cannot fail with
NOT_COORDINATOR) and, after a restart, the topics seen before the stop have leaders again. Every process started here is stopped by ``stop()``, by the
context manager, or at interpreter exit, except in detached mode (``streamscope kafka
start``), where a state file (``~/.cache/streamscope/run/kafka.json``) records the pids so
``stop_detached()`` can stop them later.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from demo import jars

MODES = ("kraft", "zookeeper")
DEFAULT_VERSION_SET = {"kraft": "kafka", "zookeeper": "kafka39"}
DEFAULT_READY_TIMEOUT_SECONDS = 90.0
DEFAULT_STOP_TIMEOUT_SECONDS = 30.0
# Light and quick to start: C1 only and the serial GC cut JVM start-up on a small box.
DEFAULT_JVM_OPTIONS = ("-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                       "-Djava.awt.headless=true", "-XX:+ExitOnOutOfMemoryError")
ZOOKEEPER_JVM_OPTIONS = ("-Xms64m", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                         "-Dzookeeper.admin.enableServer=false")
TOOLS_JVM_OPTIONS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                     "-Djava.awt.headless=true")
LOG_TAIL_LINES = 40
SASL_LISTENER = "SASL_PLAINTEXT"


class KafkaBoxError(RuntimeError):
    """The broker (or ZooKeeper) failed to start, become ready or stop."""


# Listening ports are drawn from [LISTEN_PORT_FLOOR, start of the kernel's ephemeral range).
LISTEN_PORT_FLOOR = 10000
EPHEMERAL_PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_MIN_CANDIDATES = 1000
_ports_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def listen_port_candidates(ephemeral_range: str | None) -> range:
    """Ports a listener can be given that no outgoing connection will take meanwhile.

    ``ephemeral_range`` is the text of ``ip_local_port_range`` ("32768\t60999"); an empty range
    when it is unknown or leaves too few ports below it.
    """
    try:
        low = int((ephemeral_range or "").split()[0])
    except (IndexError, ValueError):
        return range(0)
    return range(LISTEN_PORT_FLOOR, low) if low - LISTEN_PORT_FLOOR >= _MIN_CANDIDATES else range(0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, not handed out before by this process.

    Not bind(0): it returns a port of the ephemeral range, the pool the kernel also takes the
    local ports of outgoing connections from, so a client (Spark, a Kafka consumer) connecting
    between this call and the listener's bind could take it ("Address already in use"). The
    port is drawn at random below that range instead; bind(0) only where the range is unknown.
    """
    try:
        ephemeral_range = EPHEMERAL_PORT_RANGE_FILE.read_text()
    except OSError:
        ephemeral_range = None
    candidates = listen_port_candidates(ephemeral_range)
    with _ports_lock:
        for _ in range(200 if candidates else 0):
            port = random.choice(candidates)
            if port not in _ports_handed_out and port_is_free(port, time_wait_counts=True):
                _ports_handed_out.add(port)
                return port
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port


def port_is_free(port: int, *, time_wait_counts: bool = False) -> bool:
    """True if a listener could bind 127.0.0.1:``port``. TIME_WAIT leftovers of earlier
    connections do not count (a listener with SO_REUSEADDR binds anyway) unless
    ``time_wait_counts``: a port handed out fresh is one any listener can bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if not time_wait_counts:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def default_state_file() -> Path:
    """Where detached mode records pids and ports: ``<cache>/run/kafka.json``."""
    return jars.cache_root() / "run" / "kafka.json"


def random_cluster_id() -> str:
    """A Kafka cluster id (base64url of 16 random bytes, like ``kafka-storage random-uuid``).

    Redrawn when it starts with "-" (as Kafka's own Uuid.randomUuid does): the storage tool
    would read such an id as an option and refuse to format.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, or a note that it does not exist."""
    try:
        with open(path, "rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - 200 * lines))
            text = log_file.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def logging_config_args(version_set: str, config_dir: Path, *, level: str = "INFO",
                        stream: str = "stdout") -> list[str]:
    """JVM ``-D`` flags sending the Kafka/ZooKeeper logs of ``version_set`` to a console stream.

    Writes a log4j2 (Kafka 4.x) or log4j 1 / reload4j (Kafka 3.x) properties file into
    ``config_dir``; the caller redirects that stream into a file.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    backend = jars.jar_set(version_set).logging_backend
    if backend == "log4j2":
        path = config_dir / f"log4j2-{stream}-{level.lower()}.properties"
        target = "SYSTEM_ERR" if stream == "stderr" else "SYSTEM_OUT"
        _write_if_changed(path, "\n".join([
            "status = warn",
            "appender.console.type = Console",
            "appender.console.name = CONSOLE",
            f"appender.console.target = {target}",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = [%d] %p %m (%c)%n",
            f"rootLogger.level = {level}",
            "rootLogger.appenderRef.console.ref = CONSOLE",
            "logger.zk.name = org.apache.zookeeper",
            "logger.zk.level = WARN",
            "",
        ]))
        return [f"-Dlog4j2.configurationFile={path}"]
    if backend == "log4j1":
        path = config_dir / f"log4j-{stream}-{level.lower()}.properties"
        target = "System.err" if stream == "stderr" else "System.out"
        _write_if_changed(path, "\n".join([
            f"log4j.rootLogger={level}, console",
            "log4j.appender.console=org.apache.log4j.ConsoleAppender",
            f"log4j.appender.console.Target={target}",
            "log4j.appender.console.layout=org.apache.log4j.PatternLayout",
            "log4j.appender.console.layout.ConversionPattern=[%d] %p %m (%c)%n",
            "log4j.logger.org.apache.zookeeper=WARN" if level == "INFO" else "",
            "",
        ]))
        return [f"-Dlog4j.configuration=file:{path}"]
    return []


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text)
        temporary.replace(path)


def format_properties(properties: Mapping[str, Any]) -> str:
    """``key=value`` lines (Java properties) for a server/zookeeper config file."""
    return "".join(f"{key}={value}\n" for key, value in properties.items())


class KafkaBox:
    """One single-node Kafka broker (plus ZooKeeper in ``mode="zookeeper"``) on 127.0.0.1.

    Args:
        port: PLAINTEXT port; ``None`` or 0 picks a free one.
        data_dir: broker data, configs and logs; ``None`` makes a temp dir removed by ``stop()``.
            An existing, already formatted KRaft dir is reused (topics survive).
        mode: ``"kraft"`` (broker+controller in one JVM) or ``"zookeeper"``.
        version_set: jar set from ``demo.jars`` (``"kafka"`` = 4.x, ``"kafka39"`` = 3.9);
            defaults to ``"kafka"`` for KRaft and ``"kafka39"`` for ZooKeeper.
        broker_config: server.properties overrides (added last, win over the defaults).
        ready_timeout: seconds ``start()``/``start_broker()`` wait for readiness (metadata,
            group coordinator, topics back after a restart) before KafkaBoxError.
        jvm_options: broker JVM flags (heap, GC); see DEFAULT_JVM_OPTIONS.
        detached: leave the processes running when this object goes away (CLI ``start``).
        sasl_users: user -> password; when given, a second listener (SASL_PLAINTEXT, mechanism
            PLAIN, users set by JAAS) on ``sasl_port``. None (default): PLAINTEXT only.
    """

    def __init__(self, port: int | None = None, data_dir: str | os.PathLike | None = None,
                 mode: str = "kraft", version_set: str | None = None,
                 broker_config: Mapping[str, Any] | None = None, *,
                 ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
                 jvm_options: tuple[str, ...] | list[str] = DEFAULT_JVM_OPTIONS,
                 detached: bool = False, sasl_users: Mapping[str, str] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.version_set = version_set or DEFAULT_VERSION_SET[mode]
        jars.jar_set(self.version_set)  # ValueError for an unknown name
        if mode == "zookeeper" and jars.jar_set(self.version_set).logging_backend == "log4j2":
            raise ValueError("Kafka 4.x has no ZooKeeper mode; use version_set='kafka39'")
        self._requested_port = port or None
        self._owns_data_dir = data_dir is None
        self._data_dir = Path(data_dir).expanduser().resolve() if data_dir else None
        self.broker_config = dict(broker_config or {})
        self.ready_timeout = ready_timeout
        self.jvm_options = list(jvm_options)
        self.detached = detached
        self.sasl_users = _checked_jaas_users(sasl_users) if sasl_users else None
        self._port: int | None = None
        self.sasl_port: int | None = None
        self.controller_port: int | None = None
        self.zookeeper_port: int | None = None
        self._broker: subprocess.Popen | None = None
        self._zookeeper: subprocess.Popen | None = None
        self._topics_before_stop: set[str] = set()
        # KRaft cluster id used when formatting; None: a random one (a multi-node cluster in
        # `demo.kafka_cluster` gives every node the same)
        self.cluster_id: str | None = None
        if not detached:
            _LIVE_BOXES.add(self)

    # ----------------------------------------------------------------- properties
    @property
    def port(self) -> int:
        """The broker's PLAINTEXT port (fixed at the first ``start()``)."""
        if self._port is None:
            raise KafkaBoxError("KafkaBox not started yet: no port")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` value: ``"127.0.0.1:PORT"``."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """``bootstrap.servers`` of the SASL/PLAIN listener (only with ``sasl_users``)."""
        if self.sasl_users is None:
            raise KafkaBoxError("KafkaBox has no SASL listener: pass sasl_users")
        if self.sasl_port is None:
            raise KafkaBoxError("KafkaBox not started yet: no SASL port")
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise KafkaBoxError("KafkaBox not started yet: no data dir")
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """The broker's log (JVM stdout+stderr, log4j console output)."""
        return self.data_dir / "broker.log"

    @property
    def zookeeper_log_path(self) -> Path:
        return self.data_dir / "zookeeper.log"

    @property
    def broker_pid(self) -> int | None:
        return self._broker.pid if self._broker else None

    @property
    def zookeeper_pid(self) -> int | None:
        return self._zookeeper.pid if self._zookeeper else None

    def is_broker_running(self) -> bool:
        return self._broker is not None and self._broker.poll() is None

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> "KafkaBox":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> "KafkaBox":
        """Resolve jars, start ZooKeeper (if any) and the broker, wait until ready."""
        try:
            self._prepare()
            if self.mode == "zookeeper":
                self._start_zookeeper()
            self.start_broker()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the broker and ZooKeeper (SIGTERM, then SIGKILL); remove an owned temp dir."""
        self.stop_broker()
        if self._zookeeper is not None:
            _terminate(self._zookeeper, DEFAULT_STOP_TIMEOUT_SECONDS)
            self._zookeeper = None
        if self._owns_data_dir and self._data_dir is not None and not self.detached:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
        _LIVE_BOXES.discard(self)

    def start_broker(self) -> None:
        """(Re)start the broker JVM on the same port and data dir and wait until ready."""
        if self.is_broker_running():
            return
        self.launch_broker()
        self.wait_until_ready()

    def launch_broker(self) -> None:
        """Start the broker JVM without waiting for it (the nodes of a KRaft quorum must all be
        launched before any can be ready); `wait_until_ready()` waits."""
        if self.is_broker_running():
            return
        self._prepare()
        self._write_broker_config()
        if not port_is_free(self.port):
            raise KafkaBoxError(f"cannot start Kafka: 127.0.0.1:{self.port} is already in use")
        if self.mode == "kraft":
            self._format_storage_once()
        else:
            self._wait_for_old_registration_to_expire()
        self._broker = self._spawn("kafka.Kafka", [str(self._server_properties)],
                                   self.jvm_options, self.log_path, self.version_set)

    def stop_broker(self, timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS, *,
                    hard: bool = False) -> None:
        """Stop only the broker; data dir and port are kept for ``start_broker()``.

        Default: SIGTERM (controlled shutdown), SIGKILL after ``timeout``. ``hard=True``:
        SIGKILL at once, a crash (recovery on the next start takes a little longer).
        """
        if self._broker is not None:
            self._topics_before_stop = self._current_topics()
            _terminate(self._broker, 0 if hard else timeout)
            self._broker = None

    def restart_broker(self) -> None:
        """``stop_broker()`` then ``start_broker()``."""
        self.stop_broker()
        self.start_broker()

    def _current_topics(self) -> set[str]:
        """Topics with leaders right now (empty if the broker does not answer quickly)."""
        if not self.is_broker_running():
            return set()
        metadata = _metadata(self.bootstrap, timeout=2.0)
        if metadata is None:
            return set()
        return {name for name in metadata.topics if _topic_has_leaders(metadata, name)}

    # ----------------------------------------------------------------- detached mode
    def write_state(self, state_file: str | os.PathLike | None = None) -> Path:
        """Record pids, ports and paths as JSON so another process can stop this box."""
        path = Path(state_file) if state_file else default_state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "bootstrap": self.bootstrap, "port": self.port, "mode": self.mode,
            "version_set": self.version_set, "data_dir": str(self.data_dir),
            "log_path": str(self.log_path), "broker_pid": self.broker_pid,
            "controller_port": self.controller_port, "zookeeper_port": self.zookeeper_port,
            "zookeeper_pid": self.zookeeper_pid, "started_at": time.time(),
        }
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(state, indent=1) + "\n")
        temporary.replace(path)
        return path

    # ----------------------------------------------------------------- internals
    @property
    def _server_properties(self) -> Path:
        return self.data_dir / "server.properties"

    def _prepare(self) -> None:
        """Pick ports and the data dir once; resolve jars (first run downloads them)."""
        jars.java_executable()
        jars.resolve(self.version_set)
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="streamscope-kafka-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._port is None:
            self._port = self._requested_port or free_port()
        if self.mode == "kraft" and self.controller_port is None:
            self.controller_port = free_port()
        if self.mode == "zookeeper" and self.zookeeper_port is None:
            self.zookeeper_port = free_port()
        if self.sasl_users is not None and self.sasl_port is None:
            self.sasl_port = free_port()

    def _broker_properties(self) -> dict[str, Any]:
        common = {
            "log.dirs": self.data_dir / "kafka-logs",
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "num.partitions": 1,
            "auto.create.topics.enable": "true",
        }
        if self.mode == "kraft":
            mode_specific = {
                "process.roles": "broker,controller",
                "node.id": 1,
                "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                             f"CONTROLLER://127.0.0.1:{self.controller_port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names": "CONTROLLER",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name": "PLAINTEXT",
                "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            }
            if self.version_set == "kafka":
                mode_specific.update({"share.coordinator.state.topic.replication.factor": 1,
                                      "share.coordinator.state.topic.min.isr": 1})
        else:
            mode_specific = {
                "broker.id": 1,
                "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "zookeeper.connect": f"127.0.0.1:{self.zookeeper_port}",
                "zookeeper.connection.timeout.ms": 18000,
                # Kafka's default 18 s session: shorter ones expire on a busy CI box. After a
                # crash (stop_broker(hard=True)) start_broker() waits for that expiry.
            }
        return {**mode_specific, **common, **self._sasl_listener(mode_specific), **self.broker_config}

    def _sasl_listener(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """The SASL/PLAIN listener added to ``properties``' listeners (nothing without users)."""
        if self.sasl_users is None:
            return {}
        endpoint = f"{SASL_LISTENER}://127.0.0.1:{self.sasl_port}"
        protocols = properties.get("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT")
        prefix = f"listener.name.{SASL_LISTENER.lower()}"
        return {
            "listeners": f"{properties['listeners']},{endpoint}",
            "advertised.listeners": f"{properties['advertised.listeners']},{endpoint}",
            "listener.security.protocol.map": f"{protocols},{SASL_LISTENER}:SASL_PLAINTEXT",
            f"{prefix}.sasl.enabled.mechanisms": "PLAIN",
            f"{prefix}.plain.sasl.jaas.config": _plain_jaas_config(self.sasl_users),
        }

    def _write_broker_config(self) -> None:
        self._server_properties.write_text(format_properties(self._broker_properties()))

    def _format_storage_once(self) -> None:
        """``StorageTool format`` with a random cluster id, unless the dir is formatted."""
        if (self.data_dir / "kafka-logs" / "meta.properties").is_file():
            return
        command = [jars.java_executable(), *TOOLS_JVM_OPTIONS,
                   *logging_config_args(self.version_set, self.data_dir / "config", level="WARN",
                                        stream="stderr"),
                   "-cp", jars.classpath(self.version_set), "kafka.tools.StorageTool",
                   "format", "-t", self.cluster_id or random_cluster_id(), "-c", str(self._server_properties)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL, cwd=self.data_dir)
        if result.returncode != 0:
            raise KafkaBoxError(f"kafka-storage format failed (exit {result.returncode}):\n"
                                f"{result.stdout}\n{result.stderr}")

    def _start_zookeeper(self) -> None:
        if self._zookeeper is not None and self._zookeeper.poll() is None:
            return
        config = self.data_dir / "zookeeper.properties"
        config.write_text(format_properties({
            "dataDir": self.data_dir / "zookeeper",
            "clientPort": self.zookeeper_port,
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": 0,
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "ruok,srvr,dump",
            "tickTime": 2000,
        }))
        self._zookeeper = self._spawn("org.apache.zookeeper.server.quorum.QuorumPeerMain",
                                      [str(config)], ZOOKEEPER_JVM_OPTIONS,
                                      self.zookeeper_log_path, self.version_set)
        self._wait_for_zookeeper()

    def _spawn(self, main_class: str, args: list[str], jvm_options: list[str] | tuple[str, ...],
               log_path: Path, version_set: str) -> subprocess.Popen:
        """Start a JVM in its own process group, stdout+stderr appended to ``log_path``."""
        command = [jars.java_executable(), *jvm_options,
                   *logging_config_args(version_set, self.data_dir / "config"),
                   "-cp", jars.classpath(version_set), main_class, *args]
        with open(log_path, "ab") as log_file:
            log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {main_class}\n"
                           .encode())
            log_file.flush()
            return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.data_dir,
                                    start_new_session=True)

    def _wait_for_zookeeper(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._zookeeper is None or self._zookeeper.poll() is not None:
                raise KafkaBoxError("ZooKeeper exited during start-up; its log ends with:\n"
                                    + log_tail(self.zookeeper_log_path))
            if _zookeeper_answers(self.zookeeper_port):
                return
            time.sleep(0.1)
        raise KafkaBoxError(f"ZooKeeper not ready on 127.0.0.1:{self.zookeeper_port} after "
                            f"{self.ready_timeout:.0f} s; its log ends with:\n"
                            + log_tail(self.zookeeper_log_path))

    def _wait_for_old_registration_to_expire(self) -> None:
        """After a crash the dead broker's ZooKeeper session still holds /brokers/ids/<id>
        until it times out; a broker started before that exits with NodeExists."""
        broker_znode = f"/brokers/ids/{self._broker_properties()['broker.id']}"
        deadline = time.monotonic() + self.ready_timeout
        while broker_znode in _zookeeper_command(self.zookeeper_port, b"dump").split():
            if time.monotonic() >= deadline:
                raise KafkaBoxError(f"{broker_znode} still registered in ZooKeeper after "
                                    f"{self.ready_timeout:.0f} s")
            time.sleep(0.2)

    def wait_until_ready(self) -> None:
        """Wait (bounded) until the broker answers, its group coordinator works and the
        topics it had before ``stop_broker()`` are back with leaders; fail fast if it exits.
        """
        deadline = time.monotonic() + self.ready_timeout
        checks = (("answer metadata requests", self._broker_answers),
                  ("serve consumer groups", self._group_coordinator_answers),
                  ("bring back its topics", self._known_topics_have_leaders))
        for purpose, check in checks:
            while not check(min(2.0, max(0.1, deadline - time.monotonic()))):
                if not self.is_broker_running():
                    raise KafkaBoxError(
                        f"Kafka broker exited during start-up (exit {self._broker.returncode}); "
                        f"{self.log_path} ends with:\n{log_tail(self.log_path)}")
                if time.monotonic() >= deadline:
                    raise KafkaBoxError(
                        f"Kafka broker on {self.bootstrap} did not {purpose} within "
                        f"{self.ready_timeout:.0f} s; {self.log_path} ends with:\n"
                        f"{log_tail(self.log_path)}")
                time.sleep(0.1)

    def _broker_answers(self, timeout: float) -> bool:
        metadata = _metadata(self.bootstrap, timeout)
        return metadata is not None and bool(metadata.brokers)

    def _group_coordinator_answers(self, timeout: float) -> bool:
        """An offset fetch for a probe group succeeds: ``__consumer_offsets`` exists and is
        loaded, so the first commit of a test does not fail with NOT_COORDINATOR."""
        from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "log_level": 0,
                             "group.id": "streamscope-kafka-box-probe",
                             "enable.auto.commit": False})
        try:
            consumer.committed([TopicPartition("streamscope-kafka-box-probe", 0)], timeout=timeout)
            return True
        except Exception:  # KafkaException: coordinator not available / loading
            return False
        finally:
            consumer.close()

    def _known_topics_have_leaders(self, timeout: float) -> bool:
        if not self._topics_before_stop:
            return True
        metadata = _metadata(self.bootstrap, timeout)
        if metadata is None:
            return False
        return all(_topic_has_leaders(metadata, name) for name in self._topics_before_stop)

    def __repr__(self) -> str:
        port = self._port if self._port is not None else "?"
        return f"KafkaBox(mode={self.mode!r}, version_set={self.version_set!r}, port={port})"


def _checked_jaas_users(users: Mapping[str, str]) -> dict[str, str]:
    """Users and passwords that a JAAS line (and a properties file) can hold as written."""
    for user, password in users.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", user):
            raise ValueError(f"sasl_users: user {user!r} cannot be written in a JAAS config")
        if not password or not (password.isascii() and password.isprintable()) or any(c in password for c in '"\\'):
            raise ValueError(f"sasl_users: the password of {user!r} cannot be written in a JAAS config")
    return dict(users)


def _plain_jaas_config(users: Mapping[str, str]) -> str:
    """PlainLoginModule config: every ``user_<name>="<password>"`` may log in."""
    entries = " ".join(f'user_{user}="{password}"' for user, password in users.items())
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {entries};"


def _metadata(bootstrap: str, timeout: float) -> Any | None:
    """Cluster metadata from a throwaway AdminClient, or None while the broker is not up."""
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - keep import light

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                         "socket.connection.setup.timeout.ms": 1000,
                         "reconnect.backoff.max.ms": 200})
    try:
        return admin.list_topics(timeout=timeout)
    except Exception:  # KafkaException while the broker is still starting
        return None


def _topic_has_leaders(metadata: Any, name: str) -> bool:
    topic = metadata.topics.get(name)
    return (topic is not None and topic.error is None and bool(topic.partitions)
            and all(partition.leader >= 0 for partition in topic.partitions.values()))


def _zookeeper_answers(port: int | None) -> bool:
    return _zookeeper_command(port, b"ruok") == "imok"


def _zookeeper_command(port: int | None, command: bytes) -> str:
    """Answer of a ZooKeeper four-letter-word command ("" if ZooKeeper does not answer)."""
    chunks = []
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(command)
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks).decode("utf-8", errors="replace")


def _terminate(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the process group, wait up to ``timeout``, then SIGKILL it."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM if timeout > 0 else signal.SIGKILL)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(10)
    _signal_group(process.pid, signal.SIGKILL)  # stragglers in the group, if any


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------- detached helpers
def read_state(state_file: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The detached box's state, or None when there is no (readable) state file."""
    path = Path(state_file) if state_file else default_state_file()
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def pid_alive(pid: int | None, *, cmdline_contains: str | None = None) -> bool:
    """True if ``pid`` runs (and its command line contains ``cmdline_contains``, if given).

    The command-line check guards against signalling a recycled pid.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if cmdline_contains is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True  # no /proc: trust the pid
    return cmdline_contains in cmdline


def stop_detached(state_file: str | os.PathLike | None = None,
                  timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS) -> dict[str, Any] | None:
    """Stop the broker (then ZooKeeper) recorded in the state file and delete the file.

    Returns the state that was stopped, or None if nothing was recorded.
    """
    path = Path(state_file) if state_file else default_state_file()
    state = read_state(path)
    if state is None:
        return None
    data_dir = state.get("data_dir", "")
    _terminate_pid(state.get("broker_pid"), data_dir, timeout)
    _terminate_pid(state.get("zookeeper_pid"), data_dir, timeout)
    path.unlink(missing_ok=True)
    return state


def _terminate_pid(pid: int | None, must_mention: str, timeout: float) -> None:
    """SIGTERM/SIGKILL a process we did not spawn ourselves (detached mode)."""
    if not pid_alive(pid, cmdline_contains=must_mention):
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, cmdline_contains=must_mention) or _is_zombie(pid):
            return
        time.sleep(0.1)
    _signal_group(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return ") Z" in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


def detached_status(state_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """State file contents plus ``broker_running`` / ``zookeeper_running`` / ``ready`` flags."""
    state = read_state(state_file)
    if state is None:
        return {"running": False, "ready": False}
    data_dir = state.get("data_dir", "")
    broker_running = pid_alive(state.get("broker_pid"), cmdline_contains=data_dir)
    status = dict(state, broker_running=broker_running, running=broker_running,
                  zookeeper_running=pid_alive(state.get("zookeeper_pid"),
                                              cmdline_contains=data_dir))
    status["ready"] = broker_running and _bootstrap_ready(state["bootstrap"])
    return status


def _bootstrap_ready(bootstrap: str, timeout: float = 3.0) -> bool:
    metadata = _metadata(bootstrap, timeout)
    return metadata is not None and bool(metadata.brokers)


# --------------------------------------------------------------------- exit safety net
_LIVE_BOXES: "set[KafkaBox]" = set()  # strong refs: a forgotten box is still stopped


@atexit.register
def _stop_forgotten_boxes() -> None:
    """Never leave a JVM behind when the interpreter exits (tests that crashed, Ctrl-C)."""
    for box in list(_LIVE_BOXES):
        try:
            box.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
