"""The console's security rules (DESIGN §10) in-process against the real MariaDB app database and RabbitMQ:
sign-in, roles, CSRF, escaping, no hashes, login throttling, and the listening rules of `hrsync web`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pika
import pytest

from shared.events.bus import DEAD_QUEUE, REASON_HEADER, event_channel
from shared.events.dead_letters import move_dead_letters
from tests.conftest import require_service, set_env
from tests.integration.stack_fixtures import private_vhost
from tests.web.browser import run_web
from tests.web.conftest import PASSWORD, csrf_of, new_client, record_failed, sign_in
from web.users import UserStore

pytestmark = pytest.mark.integration
SCRIPT = "<script>alert(1)</script>"


def test_anonymous_visitor_gets_the_login_page(client: Any) -> None:
    """A page without a session redirects to the login page; `/api/` answers 401."""
    page = client.get("/executions")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=")
    assert "Sign in" in client.get(page.headers["location"]).text
    assert client.get("/api/executions").status_code == 401


def test_session_cookie_is_httponly_and_strict(client: Any) -> None:
    """The session cookie is signed, HttpOnly and SameSite=Strict."""
    cookie = client.get("/login").headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_viewer_reads_but_cannot_replay(client: Any) -> None:
    """A viewer sees an execution; their replay (with a valid CSRF token) is refused with 403."""
    execution_id = record_failed()
    assert sign_in(client, "vera").status_code == 303
    assert client.get(f"/executions/{execution_id}").status_code == 200
    token = client.get("/api/session").json()["csrf_token"]
    refused = client.post(f"/api/executions/{execution_id}/replay", headers={"X-CSRF-Token": token})
    assert refused.status_code == 403
    form = client.post(f"/executions/{execution_id}/replay", data={"csrf_token": token})
    assert form.status_code == 403


def test_state_change_without_csrf_token_is_refused(client: Any) -> None:
    """An operator's POST without the token, or with another session's, is 403; the login form needs it too."""
    execution_id = record_failed()
    assert client.post("/login", data={"name": "otto", "password": PASSWORD}).status_code == 403
    assert sign_in(client, "otto").status_code == 303
    assert client.post(f"/api/executions/{execution_id}/cancel").status_code == 403
    assert client.post(f"/api/executions/{execution_id}/cancel", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post(f"/executions/{execution_id}/cancel", data={"reason": "x"}).status_code == 403


def test_markup_in_data_is_shown_as_text(client: Any) -> None:
    """An error message holding a script tag is escaped on the execution page."""
    execution_id = record_failed(error=SCRIPT)
    sign_in(client, "otto")
    page = client.get(f"/executions/{execution_id}").text
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_dead_letter_source_is_shown_as_text(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead-lettered event whose source is a script tag is listed as text, never as markup."""
    require_service("RabbitMQ", "127.0.0.1", 5672)
    with private_vhost(f"hrsync-web-{os.getpid()}") as url:
        set_env(monkeypatch, events_url=url)
        body = {"specversion": "1.0", "id": "xss-1", "source": SCRIPT, "type": "hrsync.sync.requested", "data": {}}
        with event_channel(url) as channel:
            channel.basic_publish("", DEAD_QUEUE, json.dumps(body).encode(), pika.BasicProperties(
                message_id="xss-1", headers={REASON_HEADER: f"data.scope: {SCRIPT}"}))
        move_dead_letters(url)  # what the bridge does as it runs
        sign_in(client, "vera")
        page = client.get("/dead-letters")
    assert page.status_code == 200
    assert SCRIPT not in page.text
    assert page.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the source and the reason


def test_no_password_hash_in_any_response(client: Any, users: UserStore) -> None:
    """No page or API answer carries a password hash (or the word scrypt)."""
    execution_id = record_failed()
    sign_in(client, "otto")
    for path in ("/executions", f"/executions/{execution_id}", "/audit", "/attendance", "/api/session",
                 "/api/executions", f"/api/executions/{execution_id}", "/api/audit", "/openapi.json"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "scrypt$" not in answer.text, path


def test_repeated_wrong_passwords_are_slowed(users: UserStore, app_db: str) -> None:
    """After five wrong passwords the sixth attempt, even with the right one, waits (429, Retry-After)."""
    with new_client(users) as client:
        for _ in range(5):
            assert sign_in(client, "otto", "wrong password").status_code == 401
        slowed = sign_in(client, "otto")
    assert slowed.status_code == 429
    assert int(slowed.headers["retry-after"]) >= 1


def test_login_page_never_redirects_off_site(client: Any) -> None:
    """`next` pointing at another site is replaced by the executions page."""
    token = csrf_of(client.get("/login").text)
    done = client.post("/login", data={"name": "vera", "password": PASSWORD, "csrf_token": token,
                                       "next": "//evil.example/"})
    assert done.headers["location"] == "/executions"


def test_non_loopback_host_without_users_file_is_refused() -> None:
    """`hrsync web --host` beyond loopback without HRSYNC_WEB_USERS_FILE exits 2 with one line naming it."""
    done = run_web("--host", "192.0.2.10", "--port", "1", env={"HRSYNC_WEB_SECRET": "s" * 32})  # TEST-NET-1
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "HRSYNC_WEB_USERS_FILE" in line


def test_adduser_writes_a_hash_only(tmp_path: Path) -> None:
    """`hrsync web adduser` stores a scrypt hash and the role, mode 0600, never the password."""
    users = tmp_path / "users.json"
    done = run_web("adduser", "ada", "--role", "operator", "--password-stdin", stdin="s3cret-enough\n",
                   env={"HRSYNC_WEB_USERS_FILE": str(users)})
    assert done.returncode == 0, done.stderr
    assert "s3cret-enough" not in users.read_text()
    assert users.stat().st_mode & 0o777 == 0o600
    assert UserStore.load(users).authenticate("ada", "s3cret-enough") is not None
