"""A real `celery worker` subprocess for tests, with hrsync's settings in its environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path


class WorkerProcess:
    """Start `celery -A workers.app worker` and collect its output; `stop()` sends SIGTERM.

    After `kill()` (or a stop) `start()` runs the worker again, under the same name and output.
    """

    def __init__(self, env: dict[str, str], queues: Sequence[str], pool: str = "gevent",
                 concurrency: int = 50, log_path: Path | None = None, via_cli: bool = False,
                 app: str = "workers.app") -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        # via_cli: `hrsync worker` as a user starts it (gevent pool by default), else `celery -A <app> worker`
        command = ([str(Path(sys.executable).parent / "hrsync"), "worker"] if via_cli
                   else [sys.executable, "-m", "celery", "-A", app, "worker", "-P", pool])
        self.argv = [*command, "-c", str(concurrency), "-Q", ",".join(queues), "-n", self.name,
                     "--without-mingle", "--without-gossip", "-l", "INFO"]
        self.env = {**os.environ, **env}
        self.output: list[str] = []
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._terminated = False

    def start(self, timeout: float = 60) -> WorkerProcess:
        self._ready.clear()
        self._terminated = False
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("worker did not become ready:\n" + self.text()[-4000:])
        return self

    def _drain(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def text(self) -> str:
        return "".join(self.output)

    def terminate(self) -> None:
        """Send SIGTERM (warm shutdown: running tasks finish, the rest stay queued) once; `stop()` waits."""
        assert self.process is not None
        if self.process.poll() is None and not self._terminated:
            self.process.send_signal(signal.SIGTERM)
            self._terminated = True

    def kill(self) -> int:
        """SIGKILL, as a crash: nothing finishes, nothing is acknowledged; returns the exit code."""
        assert self.process is not None
        self.process.kill()
        code = self.process.wait(30)
        self._drainer.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (warm shutdown) and wait; a worker that hangs is killed and reported."""
        assert self.process is not None
        self.terminate()
        started = time.monotonic()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._drainer.join(10)
            if self.process.stdout is not None:
                self.process.stdout.close()
            raise AssertionError(f"worker hung {timeout}s after SIGTERM:\n{self.text()[-4000:]}") from None
        self.stop_seconds = time.monotonic() - started
        self._drainer.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.log_path:
            self.log_path.write_text(self.text())
        return code
