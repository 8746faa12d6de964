"""schemathesis against the console's served OpenAPI document: no generated request gets a 500."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from tests.web.conftest import new_client, sign_in
from web.users import UserStore

with warnings.catch_warnings():  # schemathesis imports Starlette's test client, which warns about httpx
    warnings.simplefilter("ignore")
    import schemathesis
    from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.integration


@pytest.fixture
def signed_in_app(app_db: str, users: UserStore) -> tuple[Any, dict[str, str]]:
    """The console app and the headers of an operator's session (cookie and CSRF token)."""
    client = new_client(users)
    sign_in(client, "otto")
    token = client.get("/api/session").json()["csrf_token"]
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return client.app, {"Cookie": cookie, "X-CSRF-Token": token}


def test_no_server_error_for_any_generated_request(signed_in_app: tuple[Any, dict[str, str]]) -> None:
    """Every operation of /openapi.json, fed generated parameters and bodies, answers below 500."""
    app, headers = signed_in_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    statuses: set[int] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET":
            continue  # actions would launch real work; their input validation is covered by the GET twins

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers=headers)
            statuses.add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query}: {response.status_code}")

        check()
    assert failures == []
    assert 200 in statuses  # signed in: the generated requests reached the endpoints
