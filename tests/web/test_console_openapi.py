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


def test_no_server_error_for_any_generated_request(app_db: str, users: UserStore) -> None:
    """Every GET operation of the served /openapi.json, fed generated parameters, answers below 500."""
    failures: list[str] = []
    statuses: set[int] = set()
    # The requests go through the console's own test client (signed in as an operator), closed at the end:
    # schemathesis's ASGI transport would keep a process-wide event loop running, which under gevent's
    # patching is the running loop of the tests that follow.
    with new_client(users) as client:
        sign_in(client, "otto")
        schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.method.upper() != "GET":
                continue  # actions would launch real work; their input validation is covered by the GET twins

            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                sent = case.as_transport_kwargs(base_url="http://testserver")
                response = client.request(sent["method"], sent["url"], params=sent.get("params"),
                                          headers=sent.get("headers"))
                statuses.add(response.status_code)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.query}: {response.status_code}")

            check()
    assert failures == []
    assert 200 in statuses  # signed in: the generated requests reached the endpoints
