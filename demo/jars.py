"""Resolve Apache Kafka and Spark-Kafka jars from Maven Central, cached on disk.

The jar sets are profiles of ``demo/pom-kafka.xml``; Maven copies one set into
``${STREAMSCOPE_CACHE:-~/.cache/streamscope}/jars/<name>-<version>/``. A ``.complete``
marker, written last (the directory is filled under a temporary name and renamed),
tells later runs the set is there, so only the first run touches the network.

    resolve("kafka")        -> Path of the jar directory (downloads on first use)
    classpath("kafka")      -> "a.jar:b.jar:..." for ``java -cp``
    spark_kafka_jars()      -> connector jars to add to pyspark (spark.jars)

Pre-warm the cache (CI, Docker image):  ``python -m demo.jars kafka kafka39 spark-kafka``
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

POM_PATH = Path(__file__).with_name("pom-kafka.xml")
MARKER_NAME = ".complete"
DEFAULT_MVN_TIMEOUT_SECONDS = 600.0
DEFAULT_SPARK_VERSION = "4.2.0"  # keep equal to the pyspark pin in pyproject.toml


class PrerequisiteMissing(RuntimeError):
    """Java or Maven is not installed, or the jars cannot be downloaded.

    Tests turn this into a skip outside CI (and a failure in CI); other errors are bugs.
    """


@dataclass(frozen=True)
class JarSet:
    """One profile of pom-kafka.xml."""

    name: str
    profile: str
    version_property: str
    version: str
    description: str
    approx_download_mb: int
    logging_backend: str  # "log4j2" (Kafka 4.x), "log4j1" (reload4j, Kafka 3.x) or "none"


def _installed_pyspark_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - always there on 3.11
        return None
    try:
        return version("pyspark")
    except PackageNotFoundError:
        return None


def _jar_sets() -> dict[str, JarSet]:
    spark_version = _installed_pyspark_version() or DEFAULT_SPARK_VERSION
    return {
        "kafka": JarSet(
            name="kafka", profile="kafka", version_property="kafka.version",
            version="4.4.0", description="Kafka 4.x", approx_download_mb=44,
            logging_backend="log4j2",
        ),
        "kafka39": JarSet(
            name="kafka39", profile="kafka39", version_property="kafka39.version",
            version="3.9.1", description="Kafka 3.9 + ZooKeeper", approx_download_mb=47,
            logging_backend="log4j1",
        ),
        "spark-kafka": JarSet(
            name="spark-kafka", profile="spark-kafka", version_property="spark.version",
            version=spark_version, description=f"Spark {spark_version} Kafka connector",
            approx_download_mb=20, logging_backend="none",
        ),
    }


JAR_SETS: dict[str, JarSet] = _jar_sets()


def jar_set(name: str) -> JarSet:
    """The JarSet called ``name``; ValueError listing the known names otherwise."""
    try:
        return JAR_SETS[name]
    except KeyError:
        raise ValueError(f"unknown jar set {name!r}; known: {', '.join(JAR_SETS)}") from None


def cache_root() -> Path:
    """``$STREAMSCOPE_CACHE`` or ``~/.cache/streamscope``."""
    configured = os.environ.get("STREAMSCOPE_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "streamscope"


def jar_dir(name: str) -> Path:
    """Where jar set ``name`` lives once resolved (it may not exist yet)."""
    spec = jar_set(name)
    return cache_root() / "jars" / f"{spec.name}-{spec.version}"


def is_resolved(name: str) -> bool:
    """True when the jar set is complete in the cache (no network needed)."""
    return (jar_dir(name) / MARKER_NAME).is_file()


def java_executable() -> str:
    """Path of ``java`` ($JAVA_HOME/bin/java first, then PATH) or PrerequisiteMissing."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise PrerequisiteMissing(
            "java not found (set JAVA_HOME or put java on PATH); Java 17+ is needed "
            "to run the Kafka broker (Debian: apt-get install openjdk-17-jre-headless)")
    return found


def mvn_executable() -> str:
    """Path of ``mvn`` or PrerequisiteMissing."""
    found = shutil.which("mvn")
    if not found:
        raise PrerequisiteMissing(
            "mvn (Apache Maven) not found on PATH; it downloads the Kafka jars from Maven "
            "Central on first use (Debian: apt-get install maven)")
    return found


def resolve(name: str, *, timeout: float | None = None, progress: TextIO | None = None) -> Path:
    """Return the directory holding jar set ``name``, downloading it on first use.

    Concurrent callers (several pytest processes, the demo) serialise on a lock file;
    the second one finds the set complete. ``timeout`` bounds the Maven run
    (default ``$STREAMSCOPE_MVN_TIMEOUT`` or 600 s). Progress goes to ``progress``
    (stderr by default). Raises PrerequisiteMissing when java/mvn are missing or
    Maven fails (network, unknown version).
    """
    target = jar_dir(name)
    if is_resolved(name):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if is_resolved(name):  # another process finished while we waited
            return target
        _download(jar_set(name), target, timeout=_mvn_timeout(timeout), progress=progress or sys.stderr)
    return target


def jars(name: str) -> list[Path]:
    """Sorted jar files of set ``name`` (resolving it if needed)."""
    return sorted(resolve(name).glob("*.jar"))


def classpath(name: str) -> str:
    """``java -cp`` value for jar set ``name`` (resolving it if needed)."""
    return os.pathsep.join(str(path) for path in jars(name))


def spark_kafka_jars() -> list[Path]:
    """Spark Kafka connector jars NOT already shipped by the installed pyspark.

    Feed them to Spark with ``spark.jars`` (comma-separated). Jars whose artifact
    pyspark already has (scala-library, lz4, snappy, slf4j, spark-tags...) are left
    out so pyspark's own versions win; without pyspark installed all jars are returned.
    """
    shipped = _pyspark_artifact_names()
    return [path for path in jars("spark-kafka") if artifact_name(path.name) not in shipped]


_VERSION_START = re.compile(r"-(?=\d)")


def artifact_name(jar_file_name: str) -> str:
    """Artifact id of a Maven-copied jar: ``kafka-clients-3.9.2.jar`` -> ``kafka-clients``.

    The version is the part after the first ``-<digit>`` whose remainder has no ``_``
    (so ``spark-sql-kafka-0-10_2.13-4.2.0.jar`` -> ``spark-sql-kafka-0-10_2.13``).
    """
    stem = jar_file_name[:-4] if jar_file_name.endswith(".jar") else jar_file_name
    for match in _VERSION_START.finditer(stem):
        if "_" not in stem[match.end():]:
            return stem[: match.start()]
    return stem


def _pyspark_artifact_names() -> set[str]:
    try:
        import pyspark  # noqa: PLC0415 - optional dependency
    except ImportError:
        return set()
    jars_dir = Path(pyspark.__file__).parent / "jars"
    return {artifact_name(path.name) for path in jars_dir.glob("*.jar")}


def _mvn_timeout(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    return float(os.environ.get("STREAMSCOPE_MVN_TIMEOUT", DEFAULT_MVN_TIMEOUT_SECONDS))


def _download(spec: JarSet, target: Path, *, timeout: float, progress: TextIO) -> None:
    """Run Maven into a temporary sibling of ``target``, then rename it into place."""
    java_executable()  # fail early with a clear message: mvn needs java too
    mvn = mvn_executable()
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn, "-B", "-f", str(POM_PATH), "-P", spec.profile,
        f"-D{spec.version_property}={spec.version}",
        "dependency:copy-dependencies", "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    print(f"resolving {spec.description} jars from Maven Central "
          f"(first run only, ~{spec.approx_download_mb} MB)...", file=progress, flush=True)
    started = time.monotonic()
    try:
        _run_maven(command, timeout=timeout, progress=progress)
        jar_files = sorted(path.name for path in staging.glob("*.jar"))
        if not jar_files:
            raise PrerequisiteMissing(f"Maven copied no jars for {spec.name} into {staging}")
        _write_marker(staging, spec, jar_files)
        shutil.rmtree(target, ignore_errors=True)  # leftovers of an older, incomplete layout
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size_mb = sum(path.stat().st_size for path in target.glob("*.jar")) / 1e6
    print(f"resolved {len(jar_files)} jars ({size_mb:.0f} MB) for {spec.description} into {target} "
          f"in {time.monotonic() - started:.1f} s", file=progress, flush=True)


def _write_marker(directory: Path, spec: JarSet, jar_files: list[str]) -> None:
    marker = {"name": spec.name, "version": spec.version, "jars": jar_files,
              "resolved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (directory / MARKER_NAME).write_text(json.dumps(marker, indent=1) + "\n")


_DOWNLOADED = re.compile(r"Downloaded from \S+: (\S+) \(([^)]*)\)")


def _run_maven(command: list[str], *, timeout: float, progress: TextIO) -> None:
    """Run Maven, echoing one line per downloaded jar; bounded by ``timeout`` seconds."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, errors="replace", start_new_session=True)
    timed_out = threading.Event()

    def kill_on_timeout() -> None:
        timed_out.set()
        _kill_group(process.pid)

    watchdog = threading.Timer(timeout, kill_on_timeout)
    watchdog.daemon = True
    watchdog.start()
    tail: collections.deque[str] = collections.deque(maxlen=40)
    downloaded_jars = 0
    try:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            match = _DOWNLOADED.search(line)
            if match and match.group(1).endswith(".jar"):
                downloaded_jars += 1
                jar_name = match.group(1).rsplit("/", 1)[-1]
                print(f"  [{downloaded_jars}] {jar_name} ({match.group(2)})", file=progress, flush=True)
        returncode = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            _kill_group(process.pid)
            process.wait()
    if timed_out.is_set():
        raise PrerequisiteMissing(
            f"Maven did not finish within {timeout:.0f} s (slow or no network?); "
            f"raise STREAMSCOPE_MVN_TIMEOUT. Last output:\n" + "\n".join(tail))
    if returncode != 0:
        raise PrerequisiteMissing(
            f"Maven failed (exit {returncode}) running: {' '.join(command)}\n"
            "Is Maven Central reachable? Last output:\n" + "\n".join(tail))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str] | None = None) -> int:
    """``python -m demo.jars [NAME...]``: resolve jar sets (all by default), print their dirs."""
    names = (argv if argv is not None else sys.argv[1:]) or list(JAR_SETS)
    try:
        for name in names:
            print(resolve(name))
    except (PrerequisiteMissing, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
