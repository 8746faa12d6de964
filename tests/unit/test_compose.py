"""compose.yaml: every service hrsync needs, with a healthcheck; each process gets its URLs; 127.0.0.1 only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.config.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]

# Long-running services (with a healthcheck) and the one-shot ones others wait for.
NEEDED = {"rabbitmq", "mariadb", "sqlserver", "redis", "mailpit", "worker", "bridge", "scheduler", "flower",
          "intake"}
ONE_SHOT = {"migrate", "sqlserver-init"}
# Settings that name a service (a URL or the ODBC string), and the service each must point to.
SERVICE_SETTINGS = {"database_url": "mariadb", "biostar_url": "mariadb", "hris_odbc": "sqlserver",
                    "broker_url": "rabbitmq", "events_url": "rabbitmq", "result_backend": "redis",
                    "smtp_url": "mailpit"}
NEEDS = {  # what each process uses; every process's start-up check connects to the app DB and broker
    "worker": {"database_url", "biostar_url", "hris_odbc", "broker_url", "result_backend", "smtp_url"},
    "bridge": {"database_url", "broker_url", "result_backend", "events_url"},
    "scheduler": {"database_url", "broker_url", "result_backend", "events_url"},
}
_DEFAULTED = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolated(value: str) -> str:
    """`${NAME:-default}` as compose would resolve it without a .env file."""
    return _DEFAULTED.sub(lambda m: m.group(2) or "", value)


def host_of(name: str, value: str) -> str:
    if name == "hris_odbc":
        parts = dict(p.split("=", 1) for p in value.split(";") if "=" in p)
        return parts["Server"].removeprefix("tcp:").split(",")[0]
    return urlsplit(value).hostname or ""


def test_settings_naming_a_service_are_all_known() -> None:
    """Every URL-like setting (…_url, the ODBC string, the result backend) is mapped to a compose service."""
    url_like = {n for n in Settings.model_fields if n.endswith("_url") or n in ("hris_odbc", "result_backend")}
    assert url_like == set(SERVICE_SETTINGS)


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_each_needed_service_is_there_with_a_healthcheck(name: str) -> None:
    """The service exists and docker can tell when it is ready."""
    assert name in SERVICES
    test = SERVICES[name].get("healthcheck", {}).get("test")
    assert test, f"{name} has no healthcheck"


@pytest.mark.parametrize("name", sorted(ONE_SHOT))
def test_one_shot_services_run_once(name: str) -> None:
    """Init and migration services exit when done and are not restarted."""
    assert SERVICES[name].get("restart") == "no"


def test_depends_on_waits_for_health_or_completion() -> None:
    """Every dependency has a condition: healthy for services, completed for one-shot ones."""
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must carry conditions"
        for dependency, rule in depends.items():
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert rule == {"condition": expected}, (name, dependency)
            assert dependency in SERVICES


@pytest.mark.parametrize("process", sorted(NEEDS))
def test_processes_get_every_url_they_need_pointing_at_the_stack(process: str) -> None:
    """worker/bridge/scheduler: each needed HRSYNC_* is set and names the service that provides it."""
    env = SERVICES[process]["environment"]
    for name in NEEDS[process]:
        variable = f"HRSYNC_{name.upper()}"
        assert variable in env, f"{process} lacks {variable}"
        assert host_of(name, interpolated(str(env[variable]))) == SERVICE_SETTINGS[name], (process, variable)
    waits_for = set(SERVICES[process]["depends_on"])
    assert {"rabbitmq", "mariadb", "migrate"} <= waits_for


def test_the_worker_waits_for_the_hris_and_mail() -> None:
    """The worker starts after the HRIS was initialised and the SMTP sink is up."""
    assert {"sqlserver-init", "mailpit", "redis"} <= set(SERVICES["worker"]["depends_on"])


def test_ports_bind_localhost_only() -> None:
    """No published port listens on anything but 127.0.0.1."""
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", (name, port)
            else:
                assert str(port).startswith("127.0.0.1:"), (name, port)


def test_init_files_exist() -> None:
    """The files compose mounts into the database containers are in the repository."""
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), source
    assert list((REPO / "docker" / "mariadb-init").glob("*.sql"))


def test_env_example_names_every_variable_compose_reads() -> None:
    """Each ${VARIABLE} in compose.yaml is listed in .env.example, so a user knows it can be set."""
    used = set(_DEFAULTED.findall((REPO / "compose.yaml").read_text()))
    listed = {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
              if line and not line.startswith("#")}
    assert {name for name, _ in used} <= listed


def test_the_intake_publishes_to_the_stacks_broker_with_its_sources() -> None:
    """`hrsync intake` gets the event plane's URL, waits for RabbitMQ, has a sources file that loads, and
    listens beyond the container's loopback only with `--behind-proxy` (its host port stays on 127.0.0.1)."""
    from shared.events.intake_sources import load_sources

    intake = SERVICES["intake"]
    env = intake["environment"]
    assert host_of("events_url", interpolated(str(env["HRSYNC_EVENTS_URL"]))) == "rabbitmq"
    assert intake["depends_on"]["rabbitmq"] == {"condition": "service_healthy"}
    source, target, _ = interpolated(intake["volumes"][0]).split(":")
    assert target == env["HRSYNC_INTAKE_SOURCES_FILE"]
    assert load_sources(REPO / source).by_name
    command = intake["command"]
    assert command[:2] == ["hrsync", "intake"]
    assert "--behind-proxy" in command or command[command.index("--host") + 1] == "127.0.0.1"
