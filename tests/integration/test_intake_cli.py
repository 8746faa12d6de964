"""`hrsync intake` refuses to start (exit 2, one line naming the setting or option) without a sources file,
with a bad one, and beyond loopback without TLS or `--behind-proxy`; `hrsync check` checks a sources file."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.check import check_intake_listening, check_intake_sources

pytestmark = [pytest.mark.integration, pytest.mark.drives_subprocesses]
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - the address under test, never bound here
SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


def hrsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = os.path.join(os.path.dirname(sys.executable), "hrsync")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HRSYNC_INTAKE")}
    return subprocess.run([script, *args], env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n  payroll: {{secrets: ['{SECRET}'], types: [hrsync.sync.requested]}}\n")
    return path


@pytest.mark.parametrize(("args", "with_sources", "message"), [
    pytest.param([], False, "HRSYNC_INTAKE_SOURCES_FILE: not set", id="no-sources-file"),
    pytest.param(["--host", ANY_ADDRESS], True, "--host 0.0.0.0: beyond loopback the intake needs TLS",
                 id="beyond-loopback-plain-http"),
    pytest.param(["--certfile", "cert.pem"], True, "--certfile/--keyfile: give both or neither", id="half-tls"),
])
def test_the_intake_refuses_to_start(args: list[str], with_sources: bool, message: str, sources: Path) -> None:
    """Exit 2 and one line naming what is missing; no secret in it."""
    env = {"HRSYNC_INTAKE_SOURCES_FILE": str(sources)} if with_sources else {}
    result = hrsync("intake", "--port", "1", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_a_bad_sources_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    """A source type that does not exist: exit 2 naming the variable and the key path."""
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n  payroll: {{secrets: ['{SECRET}'], types: [hrsync.payroll.ran]}}\n")
    result = hrsync("intake", env={"HRSYNC_INTAKE_SOURCES_FILE": str(path)})
    assert result.returncode == 2
    assert "HRSYNC_INTAKE_SOURCES_FILE: sources.payroll.types[0]: 'hrsync.payroll.ran' is not one of" in result.stderr


def test_hrsync_check_checks_a_sources_file(tmp_path: Path, sources: Path) -> None:
    """`hrsync check --offline` lists the intake's sources when a file is set, and fails on a bad one."""
    good = hrsync("check", "--offline", "--json", env={"HRSYNC_INTAKE_SOURCES_FILE": str(sources)})
    assert good.returncode == 0, good.stdout + good.stderr
    assert '"intake sources"' in good.stdout
    assert "payroll" in good.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: {}\n")
    refused = hrsync("check", "--offline", env={"HRSYNC_INTAKE_SOURCES_FILE": str(bad)})
    assert refused.returncode == 1


@pytest.mark.parametrize(("host", "loopback", "tls", "proxy", "ok"), [
    ("127.0.0.1", True, False, False, True),
    (ANY_ADDRESS, False, False, False, False),
    (ANY_ADDRESS, False, True, False, True),
    (ANY_ADDRESS, False, False, True, True),
])
def test_the_listening_rule(host: str, loopback: bool, tls: bool, proxy: bool, ok: bool) -> None:
    """Beyond loopback only with TLS or behind a proxy (DESIGN §12, like the console)."""
    assert check_intake_listening(host, loopback, tls, proxy).ok is ok


def test_no_sources_file_fails_the_check() -> None:
    """Without HRSYNC_INTAKE_SOURCES_FILE the intake's check fails (it refuses to start)."""
    assert not check_intake_sources(None).ok


def test_the_intake_serves_https_with_a_certificate(tmp_path: Path, sources: Path) -> None:
    """With `--certfile`/`--keyfile` it serves TLS: the handshake answers over https (loopback here)."""
    from tests.integration.services import port_open
    from tests.integration.smtp_fixtures import self_signed_cert

    cert, key = self_signed_cert(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = os.path.join(os.path.dirname(sys.executable), "hrsync")
    env = {**os.environ, "HRSYNC_INTAKE_SOURCES_FILE": str(sources),
           "HRSYNC_EVENTS_URL": "amqp://guest:guest@127.0.0.1:1//"}  # the handshake needs no broker
    process = subprocess.Popen([script, "intake", "--port", str(port), "--certfile", str(cert), "--keyfile",
                                str(key)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        tls = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                          context=ssl.create_default_context(cafile=str(cert)))
        tls.request("OPTIONS", "/events", headers={"WebHook-Request-Origin": "payroll.example"})
        answer = tls.getresponse()
        assert answer.status == 200
        assert answer.getheader("webhook-allowed-origin") == "payroll.example"
        tls.close()
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        plain.request("OPTIONS", "/events", headers={"WebHook-Request-Origin": "x"})
        with pytest.raises((http.client.HTTPException, OSError)):  # plain HTTP to a TLS port gets no answer
            plain.getresponse()
        plain.close()
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "https://127.0.0.1" in output
