"""What the browser and console tests share: Chromium's settings, the signed-in console, a served console."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


OPERATOR, PASSWORD = "olga", "a long operator password"


WAIT_MS = 180_000  # a chain on a busy 2-core machine


def run_web(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`hrsync web ARGS` with this session's settings plus `env` (no other console settings)."""
    script = str(Path(sys.executable).parent / "hrsync")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HRSYNC_WEB_")}
    return subprocess.run([script, "web", *args], input=stdin, capture_output=True, text=True, timeout=60,
                          check=False, env={**clean, **env})
