"""`hrsync intake [--host 127.0.0.1] [--port 8081]`: CloudEvents over HTTP (DESIGN §12).

It refuses to start (exit 2, one line) without a valid HRSYNC_INTAKE_SOURCES_FILE, and beyond loopback
without TLS (`--certfile`/`--keyfile`) or `--behind-proxy`. The broker may be away at start: requests then
answer 503 until it is back.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.web import is_loopback
from shared.config.errors import ConfigError
from shared.config.settings import get_settings


def intake(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8081,
    certfile: Annotated[Path | None, typer.Option("--certfile", help="TLS certificate (PEM)")] = None,
    keyfile: Annotated[Path | None, typer.Option("--keyfile", help="TLS private key (PEM)")] = None,
    behind_proxy: Annotated[bool, typer.Option(
        "--behind-proxy", help="TLS ends at a reverse proxy in front (its X-Forwarded-* headers are believed)",
    )] = False,
) -> None:
    """Take signed CloudEvents over HTTP and publish them to hrsync.events (loopback unless --host)."""
    import uvicorn

    from intake.app import create_app
    from intake.publisher import EventSender
    from shared.check import check_intake_listening, check_intake_sources
    from shared.events.intake_sources import load_sources
    from shared.observability.tracing import ensure_logging

    if (certfile is None) != (keyfile is None):
        raise ConfigError("--certfile/--keyfile: give both or neither")
    settings = get_settings()
    for check in (check_intake_sources(settings.intake_sources_file),
                  check_intake_listening(host, is_loopback(host), certfile is not None, behind_proxy)):
        if not check.ok:
            raise ConfigError(check.detail)
    assert settings.intake_sources_file is not None
    sources = load_sources(settings.intake_sources_file)
    ensure_logging()
    # aiormq logs a lost connection with its traceback; the intake's own line (503, the reason) says it once.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    app = create_app(sources, EventSender(settings.events()), settings.zone)
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if certfile is not None else "http"
    Console().print(f"intake on {scheme}://{shown}:{port}/events (sources: {', '.join(sorted(sources.by_name))})",
                    highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False,
                proxy_headers=behind_proxy, ssl_certfile=certfile, ssl_keyfile=keyfile)
