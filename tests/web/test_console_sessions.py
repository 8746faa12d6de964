"""Sessions that end, users read again, sign-in throttling counted before the password, listening rules, and
the users file's hashing and writing (DESIGN §10), in-process (Starlette's ASGI client) unless a real
`hrsync web` process is the point."""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.browser import run_web
from tests.web.conftest import PASSWORD, console_process, csrf_of, sign_in
from web.users import UserStore, add_user, change_password, delete_user, hash_password, read_users_file

SECRET = "k" * 32


def write_users(path: Path, users: dict[str, tuple[str, str]]) -> None:
    """A users file with these (hash, role) entries, as `adduser` writes it."""
    import json

    path.write_text(json.dumps({"users": {n: {"hash": h, "role": r} for n, (h, r) in users.items()}}))
    path.chmod(0o600)


@pytest.fixture(scope="module")
def digest() -> str:
    """One hash of PASSWORD (scrypt is slow on purpose: made once)."""
    return hash_password(PASSWORD)


@pytest.fixture
def users_file(tmp_path: Path, digest: str) -> Path:
    """A users file with the operator `otto` and the viewer `vera`."""
    path = tmp_path / "users.json"
    write_users(path, {"otto": (digest, "operator"), "vera": (digest, "viewer")})
    return path


@pytest.fixture
def console(users_file: Path) -> Iterator[Any]:
    """An anonymous visitor of a console that reads `users_file`."""
    with new_file_client(users_file) as client:
        yield client


def new_file_client(users_file: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from web.app import create_app

    return TestClient(create_app(UserStore.load(users_file), SECRET), follow_redirects=False)


def session_answer(client: Any, cookie: str) -> int:
    """The status of `/api/session` for a request carrying only this session cookie."""
    use_cookie(client, cookie)
    return int(client.get("/api/session").status_code)


def use_cookie(client: Any, cookie: str) -> None:
    """Make `cookie` the client's only session cookie (a browser replaying a saved cookie)."""
    client.cookies.clear()
    client.cookies["hrsync_session"] = cookie


def test_logout_ends_the_session(console: Any) -> None:
    """After logging out, the old cookie replayed as it was answers 401 (it was 200 before)."""
    assert sign_in(console, "otto").status_code == 303
    cookie = console.cookies["hrsync_session"]
    assert session_answer(console, cookie) == 200
    token = console.get("/api/session").json()["csrf_token"]
    assert console.post("/logout", data={"csrf_token": token}).status_code == 303
    assert session_answer(console, cookie) == 401


def test_removed_user_is_out_and_downgraded_user_cannot_act(console: Any, users_file: Path, digest: str) -> None:
    """Editing the users file without a restart: the removed user's session answers 401 and the one downgraded
    to viewer is refused an action (403) at their next request."""
    assert sign_in(console, "vera").status_code == 303
    vera = console.cookies["hrsync_session"]
    console.cookies.clear()
    assert sign_in(console, "otto").status_code == 303
    otto = console.cookies["hrsync_session"]
    assert console.get("/api/session").json()["role"] == "operator"
    write_users(users_file, {"otto": (digest, "viewer")})  # vera removed, otto a viewer now
    assert session_answer(console, vera) == 401
    use_cookie(console, otto)
    answer = console.get("/api/session")
    assert (answer.status_code, answer.json()["role"]) == (200, "viewer")
    refused = console.post("/api/executions/some-id/cancel", json={"reason": "test"},
                           headers={"X-CSRF-Token": answer.json()["csrf_token"]})
    assert refused.status_code == 403


def test_passwd_and_deluser_end_sessions(console: Any, users_file: Path) -> None:
    """A new password ends the user's sessions (the new password signs in); removing the user ends theirs too."""
    sign_in(console, "otto")
    otto = console.cookies["hrsync_session"]
    console.cookies.clear()
    sign_in(console, "vera")
    vera = console.cookies["hrsync_session"]
    change_password(users_file, "otto", "another long password")
    assert session_answer(console, otto) == 401
    assert sign_in(console, "otto", "another long password").status_code == 303
    assert session_answer(console, vera) == 200
    delete_user(users_file, "vera")
    assert session_answer(console, vera) == 401
    assert sign_in(console, "vera").status_code == 401


def test_passwd_and_deluser_commands(users_file: Path) -> None:
    """`hrsync web passwd NAME` and `web deluser NAME` change the file; an unknown name exits 2 naming NAME."""
    env = {"HRSYNC_WEB_USERS_FILE": str(users_file)}
    before = read_users_file(users_file)["otto"][0]
    done = run_web("passwd", "otto", "--password-stdin", env=env, stdin="brand new password\n")
    assert done.returncode == 0, done.stderr
    assert read_users_file(users_file)["otto"][0] != before
    assert run_web("deluser", "vera", env=env).returncode == 0
    assert "vera" not in read_users_file(users_file)
    missing = run_web("deluser", "nobody", env=env)
    assert missing.returncode == 2
    assert "NAME" in missing.stderr


async def _parallel_sign_ins(app: Any, names: list[str], password: str,
                             headers: dict[str, str] | None = None) -> list[int]:
    """POST the login form once per name, all at the same time, from one anonymous session; the statuses."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        token = csrf_of((await client.get("/login")).text)
        answers = await asyncio.gather(*(client.post(
            "/login", data={"name": n, "password": password, "csrf_token": token}, headers=headers or {})
            for n in names))
    return [a.status_code for a in answers]


def test_parallel_guesses_are_counted_before_the_password_check(users_file: Path) -> None:
    """40 wrong passwords for one name sent at once: 5 are checked (401), 35 are refused unchecked (429)."""
    from web.app import create_app

    app = create_app(UserStore.load(users_file), SECRET)
    statuses = asyncio.run(_parallel_sign_ins(app, ["otto"] * 40, "wrong password"))
    assert sorted(statuses).count(401) == 5  # the name's limit (DESIGN §10: 5 per name within 5 minutes)
    assert statuses.count(429) == 35


def test_throttle_waits_until_the_oldest_failure_leaves_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Five failures of a name at t=0..4 s: at t=10 s the wait is 300 - 10 = 290 s; at t=301 s one more try
    is allowed (the first failure left the 5-minute window); a success forgets the name's failures."""
    from web import security

    now = [0.0]
    monkeypatch.setattr(security.time, "monotonic", lambda: now[0])
    throttle = security.LoginThrottle()
    for second in range(5):
        now[0] = float(second)
        throttle.begin("name:ann", "client:1")
    now[0] = 10.0
    with pytest.raises(security.TooManyAttempts) as refused:
        throttle.begin("name:ann", "client:2")
    assert refused.value.retry_after == 290
    now[0] = 301.0
    attempt = throttle.begin("name:ann", "client:1")
    throttle.succeeded(attempt)
    for _ in range(5):
        throttle.begin("name:ann", "client:3")


@pytest.mark.slow
def test_forwarded_for_is_ignored_unless_its_sender_is_allowed(users_file: Path) -> None:
    """A real `hrsync web` on loopback: 21 wrong sign-ins under 21 names, each naming another client in
    X-Forwarded-For, come from one address: the 21st is 429 (20 per address within 5 minutes)."""
    env = {"HRSYNC_WEB_USERS_FILE": str(users_file), "HRSYNC_WEB_SECRET": SECRET}
    with console_process(env) as base, httpx.Client(base_url=base) as client:
        token = csrf_of(client.get("/login").text)
        statuses = [client.post("/login", data={"name": f"guess{n}", "password": "wrong password", "csrf_token": token},
                                headers={"X-Forwarded-For": f"198.51.100.{n + 1}"}).status_code for n in range(21)]
    assert statuses == [401] * 20 + [429]


@pytest.mark.parametrize(("args", "secret", "named"), [
    (["--host", "192.0.2.10"], SECRET, "--certfile/--keyfile"),  # no TLS and no proxy
    (["--host", "192.0.2.10", "--behind-proxy"], "short-secret", "HRSYNC_WEB_SECRET"),
    (["--host", "192.0.2.10", "--certfile", "/nonexistent.pem"], SECRET, "--keyfile"),
])
def test_beyond_loopback_needs_tls_and_a_strong_secret(users_file: Path, args: list[str], secret: str,
                                                       named: str) -> None:
    """Beyond loopback without TLS or a proxy, or with a secret under 32 bytes: exit 2, one line naming it."""
    done = run_web(*args, "--port", "1", env={"HRSYNC_WEB_USERS_FILE": str(users_file), "HRSYNC_WEB_SECRET": secret})
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert named in line


def test_cookies_are_secure_behind_tls(users_file: Path) -> None:
    """A console served over TLS or behind a TLS proxy sets `Secure` session cookies, even on an http hop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from web.app import create_app

    with TestClient(create_app(UserStore.load(users_file), SECRET, secure_cookies=True)) as client:
        assert "secure" in client.get("/login").headers["set-cookie"].lower()


def test_openapi_needs_a_signed_in_user(console: Any) -> None:
    """`/openapi.json`: 401 for an anonymous visitor, the document once signed in."""
    assert console.get("/openapi.json").status_code == 401
    sign_in(console, "vera")
    assert console.get("/openapi.json").json()["info"]["title"] == "hrsync console"


def test_an_old_hash_still_signs_in_and_is_upgraded(users_file: Path) -> None:
    """A user whose hash has scrypt n=2^14 signs in, and the file then holds an n=2^17 hash (OWASP's)."""
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    key = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    old = "$".join(("scrypt", "16384", "8", "1", base64.urlsafe_b64encode(salt).decode(),
                    base64.urlsafe_b64encode(key).decode()))
    write_users(users_file, {"olde": (old, "operator")})
    with new_file_client(users_file) as client:
        assert sign_in(client, "olde").status_code == 303
        assert client.get("/api/session").status_code == 200  # the upgrade kept this session
    assert read_users_file(users_file)["olde"][0].split("$")[1] == str(2**17)


def test_adduser_does_not_follow_a_planted_temporary_file(tmp_path: Path) -> None:
    """A symlink planted at the old predictable temporary name is not written through (O_EXCL, random name)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    users = tmp_path / "users.json"
    (tmp_path / f".users.json.{os.getpid()}.tmp").symlink_to(victim)
    add_user(users, "ada", "long enough password", "operator")
    assert victim.read_text() == "untouched"
    assert "ada" in read_users_file(users)
