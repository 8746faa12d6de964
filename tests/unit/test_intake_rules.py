"""The intake's pure rules: Standard Webhooks signatures (the library's test vectors), the token bucket, the
sources file, and the HTTP binding giving the bridge's verdict and reason for the same event."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cloudevents.v1.conversion import to_binary, to_structured
from cloudevents.v1.http import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from intake.http_binding import Rejected, batch_size_problem, read_events
from intake.ratelimit import TokenBucket
from intake.signatures import SignatureRefused, signature, signing_source
from pipelines.plans import request_for
from shared.config.errors import ConfigError
from shared.events.binding import parse_message
from shared.events.intake_sources import Source, load_sources, parse_sources
from shared.events.models import InvalidEvent

# The Standard Webhooks reference library's own test data (libraries/python/tests/test_webhooks.py).
VECTOR_SECRET = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_BODY = b'{"test": 2432232314}'
ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def vector_source(secret: str = VECTOR_SECRET, name: str = "payroll") -> Source:
    return Source(name, (base64.b64decode(secret.removeprefix("whsec_")),), frozenset({"hrsync.sync.requested"}))


def signed_headers(when: float, body: bytes = VECTOR_BODY, secret: str = VECTOR_SECRET,
                   webhook_id: str = VECTOR_ID) -> dict[str, str]:
    """The headers the reference library signs a request with."""
    stamp = datetime.fromtimestamp(when, UTC)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(when)),
            "webhook-signature": Webhook(secret).sign(webhook_id, stamp, body)}


def test_the_reference_signature_vector() -> None:
    """`sign` of the library's fixed vector (1614265330) gives its published signature."""
    key = base64.b64decode(VECTOR_SECRET)
    assert signature(key, VECTOR_ID, "1614265330", VECTOR_BODY) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


NOW_S = 1_800_000_000.0
BAD_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"webhook-id": ""}, "webhook-id", id="missing-id"),
    pytest.param({"webhook-timestamp": ""}, "webhook-timestamp", id="missing-timestamp"),
    pytest.param({"webhook-timestamp": "hello"}, "webhook-timestamp", id="invalid-timestamp"),
    pytest.param({"webhook-signature": ""}, "webhook-signature", id="missing-signature"),
    pytest.param({"webhook-signature": BAD_SIG}, "webhook-signature", id="invalid-signature"),
    pytest.param({"webhook-signature": "v2,abc"}, "webhook-signature", id="no-v1-signature"),
])
def test_the_reference_refusals(change: dict[str, str], field: str) -> None:
    """The library's refused cases are refused here too, naming the header at fault."""
    headers = {**signed_headers(NOW_S), **change}
    with pytest.raises(SignatureRefused) as refused:
        signing_source(headers, VECTOR_BODY, [vector_source()], NOW_S)
    assert refused.value.field == field


@pytest.mark.parametrize(("offset", "accepted"), [
    pytest.param(0, True, id="now"),
    pytest.param(-300, True, id="5-minutes-old"),
    pytest.param(300, True, id="5-minutes-ahead"),
    pytest.param(-301, False, id="5-minutes-1-second-old"),
    pytest.param(301, False, id="5-minutes-1-second-ahead"),
    pytest.param(-360, False, id="6-minutes-old"),
])
def test_the_timestamp_tolerance(offset: int, accepted: bool) -> None:
    """A timestamp more than 5 minutes away from now is refused (DESIGN §12; the library's 5-minute window)."""
    headers = signed_headers(NOW_S + offset)
    if accepted:
        assert signing_source(headers, VECTOR_BODY, [vector_source()], NOW_S).name == "payroll"
    else:
        with pytest.raises(SignatureRefused, match="webhook-timestamp"):
            signing_source(headers, VECTOR_BODY, [vector_source()], NOW_S)


def test_several_signatures_and_the_prefix() -> None:
    """One valid signature among others passes; a secret with or without `whsec_` is the same key."""
    headers = signed_headers(NOW_S)
    headers["webhook-signature"] = " ".join(["v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
                                             "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
                                             headers["webhook-signature"]])
    prefixed = parse_sources({"sources": {"payroll": {"secrets": [f"whsec_{VECTOR_SECRET}"],
                                                      "types": ["hrsync.sync.requested"]}}})
    assert signing_source(headers, VECTOR_BODY, prefixed.by_name.values(), NOW_S).name == "payroll"


def test_the_signature_names_the_source_and_a_changed_body_fails() -> None:
    """Of two sources the one whose (second, rotated-in) key signed is named; one changed byte refuses."""
    other = "whsec_" + base64.b64encode(b"o" * 32).decode()
    rotated = "whsec_" + base64.b64encode(b"r" * 32).decode()
    sources = parse_sources({"sources": {
        "badges": {"secrets": [other], "types": ["hrsync.punches.imported"]},
        "payroll": {"secrets": [f"whsec_{VECTOR_SECRET}", rotated], "types": ["hrsync.sync.requested"]}}})
    headers = signed_headers(NOW_S, secret=rotated)
    assert signing_source(headers, VECTOR_BODY, sources.by_name.values(), NOW_S).name == "payroll"
    with pytest.raises(SignatureRefused, match="no signature matches"):
        signing_source(headers, VECTOR_BODY.replace(b"2", b"3"), sources.by_name.values(), NOW_S)


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), webhook_id=st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                                         min_size=1, max_size=40),
       key=st.binary(min_size=24, max_size=64))
def test_whatever_the_library_signs_verifies(body: bytes, webhook_id: str, key: bytes) -> None:
    """Any body and id signed by the reference library with any key verifies here."""
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = signed_headers(NOW_S, body, secret, webhook_id)
    source = Source("s", (key,), frozenset({"hrsync.sync.requested"}))
    assert signing_source(headers, body, [source], NOW_S) is source


@pytest.mark.parametrize(("rate", "steps", "expected"), [
    # (at second t, take n) → 0 or the whole seconds to wait. Burst = rate: 5 at once pass, the 6th waits 1 s.
    pytest.param(5, [(0, 5), (0, 1)], [0, 1], id="burst-then-wait"),
    # rate 2: 2 taken at t=0, 0.5 s later 1 token is back, 2 more need 1 more token → 0.5 s → 1 whole second.
    pytest.param(2, [(0, 2), (0.5, 2), (1.0, 2)], [0, 1, 0], id="refill-half-second"),
    # rate 10: 10 at t=0; a batch of 10 at t=0.1 lacks 9 tokens → 0.9 s → 1 s; at t=1.0 the bucket is full.
    pytest.param(10, [(0, 10), (0.1, 10), (1.0, 10)], [0, 1, 0], id="batch-one-token-each"),
    # rate 1: a refused request takes nothing; 3 s idle refills only to the burst of 1.
    pytest.param(1, [(0, 1), (0.2, 1), (3.2, 1), (3.2, 1)], [0, 1, 0, 1], id="idle-refills-to-burst-only"),
    # rate 0.5: 1 token, then 1 more needs 2 s.
    pytest.param(0.5, [(0, 0.5), (0, 1)], [0, 2], id="slow-source"),
])
def test_the_token_bucket(rate: float, steps: list[tuple[float, float]], expected: list[int]) -> None:
    """Tokens per source: burst equal to the rate, one per event, `Retry-After` whole seconds ≥ 1."""
    bucket = TokenBucket(rate)
    assert [bucket.take(count, at) for at, count in steps] == expected  # type: ignore[arg-type]


def test_a_batch_above_the_rate_never_fits() -> None:
    """A source with rate 50 can never send 51 events at once (the burst is the rate)."""
    assert TokenBucket(50).fits(50)
    assert not TokenBucket(50).fits(51)


GOOD = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.mark.parametrize(("document", "message"), [
    pytest.param({}, "sources: expected a mapping", id="no-sources"),
    pytest.param({"sources": {"p": {"types": ["hrsync.sync.requested"]}}}, "sources.p.secrets: expected",
                 id="no-secrets"),
    pytest.param({"sources": {"p": {"secrets": ["whsec_***"], "types": ["hrsync.sync.requested"]}}},
                 r"sources.p.secrets\[0\]: not whsec_<base64>", id="not-base64"),
    pytest.param({"sources": {"p": {"secrets": ["whsec_" + base64.b64encode(b"k" * 8).decode()],
                                    "types": ["hrsync.sync.requested"]}}},
                 r"sources.p.secrets\[0\]: 8 bytes", id="short-secret"),
    pytest.param({"sources": {"p": {"secrets": [GOOD], "types": ["hrsync.payroll.ran"]}}},
                 r"sources.p.types\[0\]: 'hrsync.payroll.ran' is not one of", id="unknown-type"),
    pytest.param({"sources": {"p": {"secrets": [GOOD], "types": ["hrsync.sync.requested"], "rate_per_second": 0}}},
                 "sources.p.rate_per_second: expected a number", id="zero-rate"),
    pytest.param({"sources": {"p": {"secrets": [GOOD], "types": ["hrsync.sync.requested"]},
                              "q": {"secrets": [GOOD], "types": ["hrsync.sync.requested"]}}},
                 "sources.q.secrets: a secret of source 'p' too", id="shared-secret"),
])
def test_a_bad_sources_file_names_the_key(document: Any, message: str) -> None:
    """Each problem of the sources file is one line naming the variable and the key path, never the secret."""
    with pytest.raises(ConfigError, match=f"^HRSYNC_INTAKE_SOURCES_FILE: {message}") as error:
        parse_sources(document)
    assert GOOD not in str(error.value)


def test_the_sources_file_as_documented(tmp_path: Path) -> None:
    """The shape of DESIGN §12 loads; the rate defaults to 100; extra keys are allowed; keys stay out of repr."""
    path = tmp_path / "sources.yaml"
    path.write_text(f"sources:\n  payroll: {{secrets: ['{GOOD}'], types: [hrsync.employee.changed], "
                    f"rate_per_second: 50, owner: hr-it}}\n  badges: {{secrets: ['{VECTOR_SECRET}'], "
                    f"types: [hrsync.punches.imported]}}\n")
    sources = load_sources(path)
    assert sources.by_name["payroll"].rate_per_second == 50
    assert sources.by_name["badges"].rate_per_second == 100
    assert sources.highest_rate == 100
    assert "kkkk" not in repr(sources)
    assert b"k" * 32 in sources.by_name["payroll"].keys


def bridge_reason(body: bytes, content_type: str | None, headers: dict[str, Any]) -> str | None:
    """The bridge's verdict on the same AMQP message: None when it admits it, else its reason."""
    try:
        request_for(parse_message(body, content_type, headers), NOW, ZONE)
    except InvalidEvent as invalid:
        return invalid.reason
    return None


def intake_verdict(body: bytes, content_type: str | None, headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return intake_refusal(body, content_type, headers)[1]


def intake_refusal(body: bytes, content_type: str | None,
                   headers: dict[str, str]) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The intake's (detail, errors) for a request's body, or (None, ()) when it takes the events."""
    try:
        read_events(body, content_type, headers, NOW, ZONE)
    except Rejected as rejected:
        return rejected.detail, rejected.errors
    return None, ()


def event(**changes: Any) -> dict[str, Any]:
    document = {"specversion": "1.0", "id": "payroll-1", "source": "payroll", "type": "hrsync.sync.requested",
                "data": {"scope": "hris"}}
    document.update(changes)
    return document


@pytest.mark.parametrize(("document", "fields"), [
    pytest.param(event(), [], id="valid"),
    pytest.param(event(type="hrsync.unknown"), ["type"], id="unknown-type"),
    pytest.param(event(data={"scope": "weekly"}), ["data.scope"], id="bad-enum"),
    pytest.param(event(type="hrsync.employee.changed", data={}), ["data.employee_no"], id="missing-field"),
    pytest.param(event(data={"scope": "hris", "from": "1899-12-31"}), ["data.from"], id="out-of-bounds"),
    # An open range resolved against the event's day (2026-12-07 in Berlin): from 2024-01-01 to yesterday.
    pytest.param(event(data={"scope": "hris", "from": "2024-01-01"}), ["data"], id="open-range-too-long"),
    # Reasons list their fields in hrsync's order, by field path: `id` before `specversion`.
    pytest.param(event(specversion="0.3", id=""), ["id", "specversion"], id="two-fields"),
])
def test_the_intake_gives_the_bridges_reason(document: dict[str, Any], fields: list[str]) -> None:
    """Structured over HTTP: rejected exactly when the bridge would reject the AMQP message, for the same
    reason, with each bad field named."""
    body = json.dumps(document).encode()
    detail, errors = intake_refusal(body, "application/cloudevents+json", {})
    assert [field for field, _ in errors] == fields
    assert detail == bridge_reason(body, "application/cloudevents+json", {})


def test_the_sdks_http_binary_and_structured_events_read_alike() -> None:
    """The official SDK's `to_binary` and `to_structured` of one event give the same event here."""
    sdk_event = CloudEvent({"type": "hrsync.sync.requested", "source": "payroll", "id": "payroll-2",
                            "datacontenttype": "application/json", "subject": "a b%c"}, {"scope": "hris"})
    read = []
    for headers, body in (to_structured(sdk_event), to_binary(sdk_event)):
        [parsed] = read_events(body, headers.get("content-type"), headers, NOW, ZONE)
        read.append(parsed.envelope)
    assert read[0] == read[1]
    assert read[0].subject == "a b%c"


def test_binary_headers_are_percent_decoded() -> None:
    """The HTTP binding percent-encodes header values; `ce-subject: a%20b` is the subject `a b`."""
    headers = {"ce-specversion": "1.0", "ce-id": "x%2D1", "ce-source": "payroll", "ce-type": "hrsync.sync.requested",
               "ce-subject": "a%20b"}
    [parsed] = read_events(b'{"scope": "hris"}', "application/json", headers, NOW, ZONE)
    assert (parsed.id, parsed.envelope.subject) == ("x-1", "a b")


def test_a_batch_with_one_bad_event_names_it_by_index() -> None:
    """In a batch the bad event's fields carry its index; one bad event refuses the whole batch."""
    body = json.dumps([event(id="a"), event(id="b", data={"scope": "weekly"}), event(id="c")]).encode()
    assert intake_verdict(body, "application/cloudevents-batch+json", {}) == (
        ("[1].data.scope", "Input should be 'nightly', 'hris' or 'attendance'"),)
    body = json.dumps([event(id="a"), 7]).encode()
    assert intake_verdict(body, "application/cloudevents-batch+json", {}) == (("[1]", "not a JSON object: number"),)


@pytest.mark.parametrize(("body", "problem"), [
    pytest.param(b"[]", "an empty batch: send 1 to 100 events", id="empty"),
    pytest.param(json.dumps([{}] * 101).encode(), "101 events in one batch, more than 100", id="101"),
    pytest.param(json.dumps([{}] * 100).encode(), None, id="100"),
    pytest.param(b"not json", None, id="not-json-is-left-to-validation"),
])
def test_batch_sizes(body: bytes, problem: str | None) -> None:
    """A batch holds 1 to 100 events."""
    assert batch_size_problem(body) == problem


def test_a_batch_is_each_event_as_the_bridge_reads_it() -> None:
    """The events of a batch are published as their structured bodies, which the bridge reads back alike."""
    documents = [event(id=f"b-{i}") for i in range(3)]
    events = read_events(json.dumps(documents).encode(), "application/cloudevents-batch+json", {}, NOW, ZONE)
    assert [e.id for e in events] == ["b-0", "b-1", "b-2"]
    assert [json.loads(e.body) for e in events] == documents
    assert all(bridge_reason(e.body, "application/cloudevents+json", {}) is None for e in events)


def test_time_in_a_binary_event_is_validated_like_the_bridge() -> None:
    """A `ce-time` out of the years 1900-2100 gets the bridge's reason."""
    headers = {"ce-specversion": "1.0", "ce-id": "t", "ce-source": "payroll", "ce-type": "hrsync.sync.requested",
               "ce-time": (NOW + timedelta(days=365 * 200)).isoformat()}
    errors = intake_verdict(b'{"scope": "hris"}', "application/json", headers)
    assert errors == (("time", "must lie in the years 1900-2100"),)
    assert bridge_reason(b'{"scope": "hris"}', "application/json", headers) == "time: must lie in the years 1900-2100"
