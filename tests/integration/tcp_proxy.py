"""A small threaded TCP proxy to fake a broker outage without touching the shared RabbitMQ server.

Modes: `pass` forwards; `refuse` closes the listening socket (connections are refused) and drops open
connections; `blackhole` accepts connections and answers nothing (open ones go silent). Switching back to
`pass` closes the silent connections, so clients notice and reconnect.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from typing import Literal

import pytest

from tests.conftest import RABBITMQ_URL

Mode = Literal["pass", "refuse", "blackhole"]


class _Link:
    """One client connection and, when forwarding, its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client, self.upstream = client, upstream
        self.silent = upstream is None

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    sock.close()


class TcpProxy:
    """Listens on 127.0.0.1:`port` and forwards to `target` according to `mode`."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5672)) -> None:
        self.target = target
        self.mode: Mode = "pass"
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._stopped = threading.Event()
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The AMQP URL of the proxied broker (guest user, this test process's virtual host: `RABBITMQ_URL`'s)."""
        return RABBITMQ_URL.replace(":5672/", f":{self.port}/")

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 3
        while True:
            try:
                listener.bind(("127.0.0.1", port))
                break
            except OSError:  # the old listener lives until the accept loop's poll returns (≤ 0.1 s)
                if time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.05)
        listener.listen(64)
        listener.settimeout(0.1)
        return listener

    def set_mode(self, mode: Mode) -> None:
        """Switch the mode; see the module docstring for what happens to open connections."""
        with self._lock:
            self.mode = mode
            if mode == "refuse":
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
                doomed = set(self._links)
            else:
                if self._listener is None:
                    self._listener = self._listen(self.port)
                if mode == "blackhole":
                    for link in self._links:
                        link.silent = True
                    doomed = set()
                else:
                    doomed = {link for link in self._links if link.silent}
            self._links -= doomed
        for link in doomed:
            link.close()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            listener = self._listener
            if listener is None:
                self._stopped.wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            client.settimeout(None)
            self.accepted += 1
            upstream = None
            if self.mode == "pass":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.close()
                    continue
            link = _Link(client, upstream)
            with self._lock:
                self._links.add(link)
            threading.Thread(target=self._pump, args=(link, client, upstream), daemon=True).start()
            if upstream is not None:
                threading.Thread(target=self._pump, args=(link, upstream, client), daemon=True).start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket | None) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not link.silent and sink is not None:
                    sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._links.discard(link)
        link.close()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._stopped.set()
        self.set_mode("refuse")
        self._thread.join(5)


@pytest.fixture
def tcp_proxy() -> Iterator[TcpProxy]:
    """A proxy to the local RabbitMQ in `pass` mode, closed after the test."""
    proxy = TcpProxy()
    try:
        yield proxy
    finally:
        proxy.close()
