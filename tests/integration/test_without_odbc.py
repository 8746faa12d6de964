"""A fresh machine without unixODBC: `import pyodbc` fails there (`libodbc.so.2` missing), and everything that
does not read an ODBC HRIS must work anyway — the demo, the self-check, every command's help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.scenarios import clean_env

pytestmark = pytest.mark.slow

# What pyodbc's wheel raises on a machine without the system's ODBC driver manager.
NO_LIBODBC = """\
import sys


class _NoLibodbc:
    def find_spec(self, name, path=None, target=None):
        if name == "pyodbc":
            raise ImportError("libodbc.so.2: cannot open shared object file: No such file or directory")
        return None


sys.meta_path.insert(0, _NoLibodbc())
"""

# Every command path of the CLI with `--help`, in one process (what matters is what the modules import).
HELP_OF_EVERY_COMMAND = """\
import json, sys
import typer
from cli.main import app

root = typer.main.get_command(app)

def walk(command, path):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, [*path, name])

codes = {}
for path in walk(root, []):
    try:
        root.main(args=[*path, "--help"], prog_name="hrsync", standalone_mode=False)
        codes[" ".join(path)] = 0
    except SystemExit as exc:
        codes[" ".join(path)] = exc.code
print("CODES " + json.dumps(codes))
print("PYODBC_LOADED", "pyodbc" in sys.modules)
"""


def without_odbc_env(tmp_path: Path) -> dict[str, str]:
    """The demo's clean environment with a `sitecustomize` that makes `import pyodbc` fail (worker included)."""
    hook = tmp_path / "no-libodbc"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_LIBODBC)
    env = clean_env(tmp_path / "home")
    env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
    return env


def test_the_hook_makes_pyodbc_unloadable(tmp_path: Path) -> None:
    """In that environment `import pyodbc` (and aioodbc, which needs it) fails as on a fresh machine."""
    done = subprocess.run([sys.executable, "-c", "import aioodbc"], env=without_odbc_env(tmp_path),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "libodbc.so.2: cannot open shared object file" in done.stderr


def test_demo_check_and_every_help_work_without_libodbc(tmp_path: Path) -> None:
    """`hrsync demo` runs its chain to the end (exit 0), `hrsync check` passes and every command's `--help`
    exits 0, with pyodbc unloadable in the CLI and in the demo's worker."""
    env = without_odbc_env(tmp_path)
    hrsync = os.path.join(os.path.dirname(sys.executable), "hrsync")

    helps = subprocess.run([sys.executable, "-c", HELP_OF_EVERY_COMMAND], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, check=False)
    assert helps.returncode == 0, helps.stderr[-3000:]
    codes = json.loads(next(line for line in helps.stdout.splitlines() if line.startswith("CODES "))[6:])
    assert {"", "demo", "check", "worker", "punches add", "web adduser"} <= set(codes)
    assert {path: code for path, code in codes.items() if code != 0} == {}
    assert "PYODBC_LOADED False" in helps.stdout

    check = subprocess.run([hrsync, "check"], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120, check=False)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]

    demo = subprocess.run([hrsync, "demo"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=240, check=False)
    assert demo.returncode == 0, demo.stdout[-4000:]
    words = " ".join(demo.stdout.split())
    assert "succeeded" in words, demo.stdout[-4000:]
    assert "worker stopped (exit code 0)" in words, demo.stdout[-4000:]
    assert "libodbc" not in demo.stdout


# An ODBC HRIS configured on such a machine: the extract's first read says what to install.
READ_ODBC_HRIS = """\
from pipelines.extract.source import hris_source
from shared.config.errors import ConfigError
from shared.runtime.runner import run_async

async def first_batch():
    async for batch in hris_source().fetch_batches("SELECT 1", (), 10):
        return batch

try:
    run_async(first_batch())
except ConfigError as exc:
    print("REFUSED", exc)
"""


def test_an_odbc_hris_without_libodbc_is_refused_naming_what_to_install(tmp_path: Path) -> None:
    """With HRSYNC_HRIS_ODBC set and no unixODBC, reading the HRIS fails with one line naming the setting
    and `apt-get install unixodbc`, not an ImportError from deep inside."""
    env = {**without_odbc_env(tmp_path), "HRSYNC_HRIS_ODBC": "Driver={PostgreSQL Unicode};Server=127.0.0.1"}
    done = subprocess.run([sys.executable, "-c", READ_ODBC_HRIS], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "REFUSED HRSYNC_HRIS_ODBC: the ODBC driver manager cannot be loaded (libodbc.so.2" in done.stdout
    assert "apt-get install unixodbc" in done.stdout
