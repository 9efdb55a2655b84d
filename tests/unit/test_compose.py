"""docker-compose.yml, the Dockerfile and the configuration files the compose stack mounts.

No Docker daemon is needed: ``docker compose config -q`` runs when the compose CLI plugin is
installed (skipped otherwise); the file is always validated against the Compose Specification
JSON schema (as vendored by the ``check-jsonschema`` package) and structurally: services, pinned
images, healthchecks, ``depends_on`` conditions, loopback-only ports, bind mounts that exist in
the repo, and the cross-references between compose, streamscope.yaml, prometheus.yml,
alertmanager.yml and the Grafana provisioning. promtool and amtool check the Prometheus and
Alertmanager configurations.
"""
from __future__ import annotations

import copy
import importlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import missing_prerequisite

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_CONFIG = ROOT / "dashboards" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "dashboards" / "alertmanager.yml"
STREAMSCOPE_CONFIG = ROOT / "docker" / "streamscope.yaml"
RULE_FILE = ROOT / "alerts" / "prometheus" / "streamscope-rules.yml"
DATASOURCES = ROOT / "dashboards" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = ROOT / "dashboards" / "provisioning" / "dashboards" / "streamscope.yml"

REQUIRED_SERVICES = {"kafka", "demo-traffic", "spark", "streamscope", "prometheus", "alertmanager", "grafana"}
MUST_HAVE_HEALTHCHECK = {"kafka", "streamscope", "prometheus", "alertmanager", "grafana", "spark",
                         "demo-traffic"}
EXPECTED_PORTS = {"streamscope": "127.0.0.1:8050:8050", "prometheus": "127.0.0.1:9090:9090",
                  "alertmanager": "127.0.0.1:9093:9093", "grafana": "127.0.0.1:3000:3000"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of the service's bind mounts (short or long syntax)."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            parts = volume.split(":")
            source, target = parts[0], parts[1]
        else:
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
        if source.startswith((".", "/")):
            out.append((source, target))
    return out


def container_path_of(service: str, host_path: str) -> str:
    for source, target in bind_mounts(services()[service]):
        if (ROOT / source).resolve() == (ROOT / host_path).resolve():
            return target
    raise AssertionError(f"{host_path} is not mounted into {service}")


def command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


# --------------------------------------------------------------------------- validity
def _compose_command() -> list[str] | None:
    """`docker compose` (the CLI plugin), or the Compose v2 binary that scripts/setup.sh builds
    into the cache in CI (no Docker engine is needed to validate a file)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return [docker, "compose"]
    cache = Path(os.environ.get("STREAMSCOPE_CACHE", Path.home() / ".cache" / "streamscope"))
    built = cache / "bin" / "docker-compose"
    return [str(built)] if built.is_file() else None


def test_docker_compose_config():
    compose = _compose_command()
    if compose is None:
        missing_prerequisite("Docker Compose v2 is not installed (scripts/setup.sh builds it in CI); the schema "
                             "and structural tests in this file validate docker-compose.yml without it")
    result = subprocess.run([*compose, "-f", str(COMPOSE_FILE), "config", "-q"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def _compose_schema():
    try:
        from importlib.resources import files

        text = (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
        import jsonschema
    except (ImportError, FileNotFoundError, ModuleNotFoundError) as error:
        missing_prerequisite(f"the Compose Specification schema is not available ({error}); "
                             "pip install check-jsonschema (it vendors compose-spec.json)")
    schema = json.loads(text)
    return jsonschema.Draft202012Validator(schema)


def test_compose_file_matches_the_compose_specification_schema():
    validator = _compose_schema()
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_mistakes():
    validator = _compose_schema()
    broken = copy.deepcopy(compose())
    broken["services"]["streamscope"]["depends_on"]["kafka"]["condition"] = "service_ready"
    broken["services"]["grafana"]["healthcheck"]["intervall"] = "10s"
    messages = " ".join(e.message for e in validator.iter_errors(broken))
    assert "service_ready" in messages and "intervall" in messages


def test_required_services_and_pinned_images():
    svc = services()
    assert REQUIRED_SERVICES <= set(svc)
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", svc["kafka"]["image"])
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", svc["prometheus"]["image"])
    assert re.fullmatch(r"prom/alertmanager:v\d+\.\d+\.\d+", svc["alertmanager"]["image"])
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", svc["grafana"]["image"])
    for name in ("streamscope", "spark", "demo-traffic"):
        build = svc[name].get("build")
        assert build and (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_healthchecks():
    svc = services()
    for name in MUST_HAVE_HEALTHCHECK:
        check = svc[name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck without {key}"
    kafka_test = " ".join(svc["kafka"]["healthcheck"]["test"])
    assert re.search(r"/opt/kafka/bin/kafka-(broker-api-versions|topics)\.sh", kafka_test)
    assert "/healthz" in " ".join(svc["streamscope"]["healthcheck"]["test"])
    assert "/-/ready" in " ".join(svc["prometheus"]["healthcheck"]["test"])
    assert "/-/ready" in " ".join(svc["alertmanager"]["healthcheck"]["test"])
    assert "/api/health" in " ".join(svc["grafana"]["healthcheck"]["test"])


def test_depends_on_conditions():
    svc = services()

    def condition(service: str, dependency: str) -> str:
        return svc[service]["depends_on"][dependency]["condition"]

    assert condition("streamscope", "kafka") == "service_healthy"
    assert condition("demo-traffic", "kafka") == "service_healthy"
    assert condition("spark", "kafka") == "service_healthy"
    assert condition("spark", "demo-traffic") == "service_healthy"  # topics exist before Spark subscribes
    assert condition("prometheus", "streamscope") == "service_healthy"
    assert condition("prometheus", "alertmanager") == "service_healthy"
    assert condition("grafana", "prometheus") == "service_healthy"
    for name, service in svc.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use the long depends_on syntax with conditions"
        for dependency, spec in depends.items():
            assert dependency in svc, f"{name} depends on unknown service {dependency}"
            assert spec.get("condition") in ("service_healthy", "service_started",
                                             "service_completed_successfully")
            if spec["condition"] == "service_healthy":
                assert svc[dependency].get("healthcheck"), f"{name} waits for {dependency}'s health, which has none"

    # No cycles.
    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join(path + (name,))}"
        for dependency in svc[name].get("depends_on", {}):
            visit(dependency, path + (name,))

    for name in svc:
        visit(name, ())


def test_ports_are_published_on_loopback_only():
    svc = services()
    for name, service in svc.items():
        for port in service.get("ports", []):
            text = port if isinstance(port, str) else f"{port.get('host_ip')}:{port.get('published')}:{port.get('target')}"
            assert text.startswith("127.0.0.1:"), f"{name} publishes {text} beyond loopback"
    for name, port in EXPECTED_PORTS.items():
        assert port in svc[name]["ports"], f"{name}: expected port {port}"


def test_every_bind_mount_and_secret_exists_in_the_repo():
    data = compose()
    for name, service in data["services"].items():
        for source, _ in bind_mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
    for name, secret in data.get("secrets", {}).items():
        assert (ROOT / secret["file"]).is_file(), f"secret {name}: {secret['file']} missing"
    for name, service in data["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/")):
                assert source in data.get("volumes", {}), f"{name}: named volume {source} not declared"


# --------------------------------------------------------------------------- cross-references
def test_streamscope_service_config():
    from monitor.app.config import load_config

    svc = services()["streamscope"]
    mounted = container_path_of("streamscope", "docker/streamscope.yaml")
    assert command_args(svc)[-2:] == ["--config", mounted]
    assert command_args(svc)[:2] == ["streamscope", "run"]
    config = load_config(STREAMSCOPE_CONFIG, environ={})
    assert config.web.host == "0.0.0.0" and config.web.port == 8050
    assert [c.bootstrap_servers for c in config.clusters] == ["kafka:9092"]
    kafka_env = services()["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    # Spark UIs: compose services, on the ports the jobs were told to use.
    for url in config.spark.ui_urls:
        host, port = re.fullmatch(r"http://([\w-]+):(\d+)", url).groups()
        assert host in services(), f"spark.ui_urls: {host} is not a compose service"
        assert f"--ui-port={port}" in command_args(services()[host])
        assert services()[host]["environment"].get("SPARK_LOCAL_IP") == "0.0.0.0", \
            f"{host}: the driver UI must listen beyond the container's loopback"
    for receiver in config.alerts.receivers.alertmanager:
        assert receiver.url == "http://alertmanager:9093"


@pytest.mark.parametrize("service,module", [("spark", "demo.spark_jobs.structured"),
                                            ("spark-dstream", "demo.spark_jobs.dstream")])
def test_spark_job_commands_parse(service: str, module: str):
    svc = services().get(service)
    if svc is None:
        pytest.skip(f"no {service} service")
    args = command_args(svc)
    assert args[:3] == ["python", "-m", module]
    parsed = importlib.import_module(module).parse_args(args[3:])
    assert parsed.bootstrap == "kafka:9092"
    if module.endswith("structured"):
        assert parsed.progress_topic == "streamscope-progress"


def test_demo_traffic_entry_point():
    svc = services()["demo-traffic"]
    script = command_args(svc)[-1]
    assert script == "/opt/streamscope/docker/demo_traffic.py"
    assert f"COPY docker/demo_traffic.py {script}" in DOCKERFILE.read_text()
    spec = importlib.util.spec_from_file_location("demo_traffic", ROOT / "docker" / "demo_traffic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports demo.pipeline, demo.producer, demo.consumers
    assert callable(module.main)
    ready = svc["environment"]["READY_FILE"]
    assert ready in svc["healthcheck"]["test"]


def test_prometheus_config_matches_compose():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["streamscope"]["static_configs"] for t in sc["targets"]]
    assert targets == ["streamscope:8050"]
    assert config["rule_files"] == [container_path_of("prometheus", "alerts/prometheus/streamscope-rules.yml")]
    assert container_path_of("prometheus", "dashboards/prometheus.yml") == "/etc/prometheus/prometheus.yml"
    am_targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"]
                  for t in sc["targets"]]
    assert am_targets == ["alertmanager:9093"]


def test_prometheus_config_is_valid_for_promtool(tmp_path: Path):
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_prerequisite("promtool not found (Debian package prometheus)")
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["rule_files"] = [str(RULE_FILE)]  # the container path, resolved to the repo file
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_is_valid_and_routes(tmp_path: Path):
    amtool = shutil.which("amtool")
    if amtool is None:
        missing_prerequisite("amtool not found (Debian package prometheus-alertmanager)")
    result = subprocess.run([amtool, "check-config", str(ALERTMANAGER_CONFIG)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr

    def receivers(*labels: str) -> str:
        out = subprocess.run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip()

    assert receivers("alertname=StreamscopeConsumerLagHigh", "severity=warning") == "team-slack"
    assert set(receivers("alertname=StreamscopeOfflinePartitions", "severity=critical").split(",")) == {
        "team-slack", "oncall-email"}


def test_alertmanager_secrets_come_from_mounted_files():
    text = ALERTMANAGER_CONFIG.read_text()
    config = yaml.safe_load(text)
    assert "api_url:" not in text and "smtp_auth_password:" not in text, "secrets must be *_file"
    secret_paths = {config["global"]["slack_api_url_file"], config["global"]["smtp_auth_password_file"]}
    declared = {f"/run/secrets/{name}" for name in services()["alertmanager"].get("secrets", [])}
    assert secret_paths <= declared
    inhibit = config["inhibit_rules"][0]
    assert inhibit["equal"] == ["cluster"]
    assert any("StreamscopeCollectorDown" in m for m in inhibit["source_matchers"])
    assert any("StreamscopeConsumer" in m for m in inhibit["target_matchers"])
    assert container_path_of("alertmanager", "dashboards/alertmanager.yml") == "/etc/alertmanager/alertmanager.yml"


def test_grafana_provisioning_matches_compose():
    datasources = yaml.safe_load(DATASOURCES.read_text())
    assert datasources["apiVersion"] == 1
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == container_path_of("grafana", "dashboards")
    assert container_path_of("grafana", "dashboards/provisioning/datasources") == \
        "/etc/grafana/provisioning/datasources"
    assert container_path_of("grafana", "dashboards/provisioning/dashboards") == \
        "/etc/grafana/provisioning/dashboards"
    home = services()["grafana"]["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    if home:
        assert home.startswith(provider["options"]["path"] + "/")
        assert (ROOT / "dashboards" / Path(home).name).is_file()


def test_dockerfile():
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert "openjdk-17-jre-headless" in text
    assert '"streamscope[spark]"' in text
    assert "python -m demo.jars spark-kafka" in text
    assert re.search(r"^USER (?!root)\w+", text, re.M), "run as a non-root user"
    for match in re.finditer(r"^COPY (?!--from)(.+) (\S+)$", text, re.M):
        for source in match.group(1).split():
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"


# --------------------------------------------------------------------------- the fleet profile
FLEET_CONFIG = ROOT / "docker" / "fleet.yaml"
FLEET_PROMETHEUS = ROOT / "dashboards" / "prometheus-fleet.yml"
FLEET_REPLICAS = ("streamscope-fleet-1", "streamscope-fleet-2", "streamscope-fleet-3")


def test_fleet_profile_three_replicas_a_prometheus_and_serve():
    """docs/scaling.md: `--profile fleet` runs three replicas of one fleet, a Prometheus that
    scrapes all three keeping their instance label, and one `serve` over that Prometheus."""
    from monitor.app.config import load_config

    svc = services()
    for name in (*FLEET_REPLICAS, "prometheus-fleet", "streamscope-serve"):
        assert svc[name].get("profiles") == ["fleet"], f"{name}: not in the fleet profile only"
    hostnames = set()
    for name in FLEET_REPLICAS:
        args = command_args(svc[name])
        assert args[:2] == ["streamscope", "run"] and args[args.index("--fleet") + 1] == "demo"
        assert args[args.index("--config") + 1] == container_path_of(name, "docker/fleet.yaml")
        assert "/healthz" in " ".join(svc[name]["healthcheck"]["test"])
        hostnames.add(svc[name]["hostname"])
    assert len(hostnames) == 3  # the default instance label, <host name>:<port>, differs per replica
    config = load_config(FLEET_CONFIG, overrides={"fleet": {"name": "demo"}}, environ={})
    assert config.fleet.enabled and config.web.host == "0.0.0.0" and config.web.port == 8050
    assert [c.bootstrap_servers for c in config.clusters] == ["kafka:9092"]
    prometheus = yaml.safe_load(FLEET_PROMETHEUS.read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["honor_labels"] is True
    assert sorted(t for sc in job["static_configs"] for t in sc["targets"]) == \
        sorted(f"{h}:{config.web.port}" for h in hostnames)
    assert container_path_of("prometheus-fleet", "dashboards/prometheus-fleet.yml") == "/etc/prometheus/prometheus.yml"
    serve = command_args(svc["streamscope-serve"])
    assert serve[:2] == ["streamscope", "serve"]
    assert serve[serve.index("--prometheus-url") + 1] == "http://prometheus-fleet:9090"
    assert svc["streamscope-serve"]["ports"] == [f"127.0.0.1:8060:{serve[serve.index('--port') + 1]}"]


def test_fleet_prometheus_config_is_valid_for_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_prerequisite("promtool not found (Debian package prometheus)")
    result = subprocess.run([promtool, "check", "config", str(FLEET_PROMETHEUS)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
