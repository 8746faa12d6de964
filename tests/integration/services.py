"""Stop, kill and start the real local servers, for the fault tests (marker `fault`).

The commands are the ones `.ci/run` uses to start the services; every helper waits until the service
answers again, so a test leaves the machine as it found it.
"""

from __future__ import annotations

import socket
import subprocess
import time

from shared.events.bus import AUDIT_QUEUE, BRIDGE_QUEUE, DEAD_QUEUE

RABBITMQ_PORT, MARIADB_PORT = 5672, 3306


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_port(port: int, up: bool = True, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"127.0.0.1:{port} still {'down' if up else 'up'} after {timeout}s")
        time.sleep(0.2)


def run(*argv: str, timeout: float = 120) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=timeout)


def rabbitmq_stop_app() -> None:
    """Stop the RabbitMQ application (the node stays up): every connection drops, the port closes."""
    run("rabbitmqctl", "stop_app")
    wait_port(RABBITMQ_PORT, up=False)


def rabbitmq_start_app() -> None:
    run("rabbitmqctl", "start_app")
    run("rabbitmqctl", "await_startup")
    wait_port(RABBITMQ_PORT)


def rabbitmq_kill9_and_restart() -> None:
    """SIGKILL the Erlang VM (no clean shutdown, nothing flushed on purpose), then start it again."""
    subprocess.run(["pkill", "-9", "-f", "beam.smp.*rabbit"], check=False)
    wait_port(RABBITMQ_PORT, up=False)
    subprocess.run(["pkill", "-9", "-f", "epmd"], check=False)
    run("rabbitmq-server", "-detached")
    wait_port(RABBITMQ_PORT, timeout=180)
    run("rabbitmqctl", "await_startup", timeout=180)
    wait_quorum_leaders(BRIDGE_QUEUE, AUDIT_QUEUE, DEAD_QUEUE)


def wait_quorum_leaders(*queues: str, timeout: float = 180) -> None:
    """Wait until each quorum queue of vhost `/` that exists has a leader again. A node restarted after
    SIGKILL recovers every quorum queue it holds (all vhosts) one by one, after `await_startup`; until a
    queue's leader is back, publishes routed to it wait."""
    deadline = time.monotonic() + timeout
    for queue in queues:
        while True:
            status = subprocess.run(["rabbitmq-queues", "quorum_status", queue], capture_output=True, text=True,
                                    timeout=60)
            if status.returncode != 0 or "leader" in status.stdout:  # no such queue, or it has its leader
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"quorum queue {queue} has no leader {timeout}s after the restart")
            time.sleep(0.5)


def rabbitmq_memory_alarm(on: bool, timeout: float = 60) -> None:
    """Raise (a tiny watermark) or clear (the default 0.4) RabbitMQ's memory alarm, and wait until the node
    says it is raised or cleared (setting the watermark only schedules the check)."""
    run("rabbitmqctl", "set_vm_memory_high_watermark", "0.0000001" if on else "0.4")
    deadline = time.monotonic() + timeout
    while _memory_alarm_raised() != on:
        if time.monotonic() > deadline:
            raise TimeoutError(f"RabbitMQ's memory alarm not {'raised' if on else 'cleared'} after {timeout}s")
        time.sleep(0.2)


def _memory_alarm_raised() -> bool:
    alarms = subprocess.run(["rabbitmqctl", "eval", "rabbit_alarm:get_alarms()."], check=True,
                            capture_output=True, text=True, timeout=60).stdout
    return "memory" in alarms


def mariadb_kill9() -> None:
    """SIGKILL mariadbd (no clean shutdown): every connection drops, the port closes."""
    subprocess.run(["pkill", "-9", "-x", "mariadbd"], check=False)
    wait_port(MARIADB_PORT, up=False)


def mariadb_start() -> None:
    """Start mariadbd with the command `.ci/run` uses (a no-op when it runs)."""
    run("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd")
    wait_port(MARIADB_PORT, timeout=120)


def mariadb_kill9_and_restart() -> None:
    mariadb_kill9()
    mariadb_start()


def rabbitmq_consumer_timeout(milliseconds: int | None = None) -> int:
    """RabbitMQ's `consumer_timeout` (ms) for channels opened from now on; set it when given. Returns
    the value in force before."""
    def erl(expression: str) -> str:
        return subprocess.run(["rabbitmqctl", "eval", expression], check=True, capture_output=True,
                              text=True, timeout=60).stdout.strip()

    before = erl("application:get_env(rabbit, consumer_timeout).")  # {ok,1800000}
    if milliseconds is not None:
        erl(f"application:set_env(rabbit, consumer_timeout, {int(milliseconds)}).")
    return int(before.strip("{}").split(",")[1])
