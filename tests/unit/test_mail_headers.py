"""Pure pieces of the notify stage: header sanitising, Message-IDs, outbox keys, mail URLs, error verdicts."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from pipelines.mail.errors import MailSetupError
from pipelines.mail.message import build_message, clean_header, message_id_for, outbox_key, parse_mailbox
from pipelines.mail.outbox import exception_summary
from pipelines.mail.send import SendPolicy, classify
from pipelines.mail.smtp import ConnectFailed, eml_path, parse_mail_url
from pipelines.mail.templates import render_bodies

HOME = Path("/home/hr/.hrsync")
WHEN = dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(("raw", "expected"), [
    ("Missing punch", "Missing punch"),
    ("a\r\nBcc: x@y", "a Bcc: x@y"),
    ("a\nb\rc", "a b c"),
    ("\r\n\r\nleading", "leading"),
    ("tab\there", "tab here"),
    ("nul\x00byte", "nul byte"),
    ("del\x7fchar", "del char"),
    ("c1\x85next-line", "c1 next-line"),
    ("u\u2028line\u2029para", "u line para"),
    ("many     spaces", "many spaces"),
    ("Jürgen Ñoño", "Jürgen Ñoño"),
    ("", ""),
    (None, ""),
])
def test_clean_header_removes_line_breaks_and_controls(raw: str | None, expected: str) -> None:
    """Every control character or line separator becomes one space; text is otherwise kept."""
    assert clean_header(raw) == expected


def test_clean_header_cuts_to_the_limit() -> None:
    """A value longer than the limit is cut, with no trailing space left."""
    assert clean_header("x" * 300) == "x" * 255
    assert clean_header("ab cd", limit=3) == "ab"


@pytest.mark.parametrize("key", [
    "missing_punch:E1:2026-03-02:day",
    "manager_digest:M1:2026-03-02",
    "sync_failed:abc:merge:ops@x",
    "x" * 255,
])
def test_message_id_is_deterministic_and_well_formed(key: str) -> None:
    """The same key always gives the same `<32 hex@hrsync>` id; different keys give different ids."""
    first, second = message_id_for(key), message_id_for(key)
    assert first == second
    assert first.startswith("<")
    assert first.endswith("@hrsync>")
    assert len(first) == 1 + 32 + len("@hrsync>")
    assert int(first[1:33], 16) >= 0
    assert message_id_for(key + "x") != first


def test_message_id_is_a_prefix_of_the_keys_sha256() -> None:
    """The id is the first 32 hex digits of sha256(key): stable across processes and versions."""
    import hashlib

    key = "manager_digest:M1:2026-03-02"
    assert message_id_for(key) == f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@hrsync>"


@pytest.mark.parametrize(("kind", "parts", "expected"), [
    ("missing_punch", ("E0042", "2026-03-02", "day"), "missing_punch:E0042:2026-03-02:day"),
    ("manager_digest", ("M1", dt.date(2026, 3, 2)), "manager_digest:M1:2026-03-02"),
    ("sync_failed", ("e-1", "merge", "ops@x.test"), "sync_failed:e-1:merge:ops@x.test"),
    ("sync_failed", ("e-1", "a:b", "ops@x"), "sync_failed:e-1:a_b:ops@x"),  # ':' inside a part cannot collide
    ("sync_failed", ("e-1", "a\r\nb", "ops@x"), "sync_failed:e-1:a b:ops@x"),
])
def test_outbox_keys(kind: str, parts: tuple[Any, ...], expected: str) -> None:
    """Keys are `kind:part:…`, parts sanitised, so one notification has exactly one key."""
    assert outbox_key(kind, *parts) == expected


def test_a_long_outbox_key_is_hashed_within_255_characters() -> None:
    """Over 255 characters the tail becomes a sha256: still unique, still deterministic."""
    long_a, long_b = outbox_key("sync_failed", "e", "s" * 300, "a"), outbox_key("sync_failed", "e", "s" * 300, "b")
    assert len(long_a) == 255
    assert long_a != long_b
    assert long_a == outbox_key("sync_failed", "e", "s" * 300, "a")


def _headers(data: bytes) -> list[tuple[str, str]]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    return [(k, str(v)) for k, v in message.items()]


@pytest.mark.parametrize(("name", "subject"), [
    ("Mallory\r\nBcc: victim@evil.test", "hello"),
    ("Mallory", "hi\r\nBcc: victim@evil.test"),
    ("Mallory\nX-Injected: 1", "hi\rX-Injected: 1"),
    ("M\u2028Bcc: v@e.test", "s\u2029Bcc: v@e.test"),
    ('"Quoted", <angle> name', "Subject with <angles> & \"quotes\""),
])
def test_build_message_cannot_be_made_to_inject_headers(name: str, subject: str) -> None:
    """Whatever the name and subject hold, the message has exactly the expected headers, one line each."""
    out = build_message(sender="HR <hr@example.test>", recipient="to@example.test", recipient_name=name,
                        subject=subject, body_text="body", body_html="<p>body</p>",
                        message_id=message_id_for("k"), date=WHEN)
    headers = _headers(out.data)
    assert [k for k, _ in headers] == ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted",
                                       "MIME-Version", "Content-Type"]
    assert all("\n" not in v and "\r" not in v for _, v in headers)
    assert out.recipient == "to@example.test"
    assert out.sender == "hr@example.test"
    assert b"\r\nBcc:" not in out.data
    assert b"\nX-Injected" not in out.data


@pytest.mark.parametrize("recipient", ["not-an-address", "", "a@b.test\r\nBcc: v@e.test, c@d.test"])
def test_a_recipient_that_is_not_one_address_is_refused(recipient: str) -> None:
    """Build fails (ValueError) rather than send to something that is not exactly one address."""
    try:
        out = build_message(sender="hr@example.test", recipient=recipient, recipient_name=None, subject="s",
                            body_text="b", body_html=None, message_id="<x@hrsync>", date=WHEN)
    except ValueError:
        return
    assert "\n" not in out.recipient
    assert " " not in out.recipient
    assert "," not in out.recipient
    assert [k for k, _ in _headers(out.data)].count("To") == 1


def test_a_non_ascii_name_is_encoded_and_the_body_is_7bit() -> None:
    """Non-ASCII names become encoded words and bodies quoted-printable: any relay takes the bytes."""
    out = build_message(sender="hr@example.test", recipient="j@example.test", recipient_name="Jürgen Groß",
                        subject="Fehlender Stempel am 2. März", body_text="Grüße", body_html="<p>Grüße</p>",
                        message_id="<x@hrsync>", date=WHEN)
    out.data.decode("ascii")
    message = email.message_from_bytes(out.data, policy=email.policy.default)
    assert message["To"].addresses[0].display_name == "Jürgen Groß"
    assert message["Subject"] == "Fehlender Stempel am 2. März"
    assert message.get_body(("plain",)).get_content().strip() == "Grüße"


@pytest.mark.parametrize(("value", "addr", "name"), [
    ("hrsync@example.test", "hrsync@example.test", ""),
    ("HR Sync <hrsync@example.test>", "hrsync@example.test", "HR Sync"),
    ('"Doe, Jane" <jane@example.test>', "jane@example.test", "Doe, Jane"),
    ("Jürgen <j@example.test>", "j@example.test", "Jürgen"),
    ("<a@example.test>", "a@example.test", ""),
])
def test_parse_mailbox(value: str, addr: str, name: str) -> None:
    """Settings and rows may carry a display name; the address and name are kept."""
    parsed = parse_mailbox(value)
    assert (parsed.addr_spec, parsed.display_name) == (addr, name)


@pytest.mark.parametrize("value", [
    "HR\r\nBcc: x@y <hrsync@example.test>",  # lax parsers pick x@y here
    "a@b.test Bcc: v@e.test, c@d.test",
    "a@example.test, b@example.test",
    "a@b.c <d@e.f>",
    "not-an-address",
    "",
])
def test_parse_mailbox_refuses_anything_but_one_clean_address(value: str) -> None:
    """Groups, lists, junk and parser defects are refused instead of guessed at."""
    with pytest.raises(ValueError, match="address"):
        parse_mailbox(value)


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://mail.example.test", {"host": "mail.example.test", "port": 25, "use_tls": False, "start_tls": False}),
    ("smtp://mail:2525", {"port": 2525, "use_tls": False, "start_tls": False}),
    ("smtp+starttls://u:p@mail", {"port": 587, "start_tls": True, "username": "u", "password": "p"}),
    ("smtps://mail", {"port": 465, "use_tls": True, "start_tls": False}),
    ("smtps://u%40x:p%3A%40w@mail:4650", {"port": 4650, "username": "u@x", "password": "p:@w"}),
    ("smtp://mail?timeout=5&verify=false", {"timeout": 5.0, "validate_certs": False}),
    ("smtp+starttls://mail?cafile=/etc/ca.pem", {"cafile": "/etc/ca.pem", "validate_certs": True}),
    ("file:///var/mail/out", {"kind": "file", "directory": Path("/var/mail/out")}),
    (None, {"kind": "file", "directory": HOME / "mail"}),
    ("", {"kind": "file", "directory": HOME / "mail"}),
])
def test_parse_mail_url(url: str | None, expected: dict[str, Any]) -> None:
    """Each scheme gets its default port and TLS mode; credentials are URL-decoded."""
    target = parse_mail_url(url, HOME)
    assert {k: getattr(target, k) for k in expected} == expected
    assert target.kind == expected.get("kind", "smtp")


def test_the_password_is_redacted_in_display_and_repr() -> None:
    """Neither the shown URL nor the target's repr hold the password."""
    target = parse_mail_url("smtps://mailer:hunter2@mail.example.test", HOME)
    assert target.display == "smtps://mailer:***@mail.example.test"
    assert "hunter2" not in repr(target)


@pytest.mark.parametrize(("url", "message"), [
    ("http://mail", "unknown scheme"),
    ("smtp://", "no host"),
    ("smtp://mail?bogus=1", "unknown option"),
    ("smtp://u:secret@mail?timeout=soon", "timeout"),
    ("smtp://u:secret@mail:notaport", "Port"),
    ("file://", "folder"),
])
def test_a_bad_mail_url_names_the_variable_without_the_password(url: str, message: str) -> None:
    """A bad HRSYNC_SMTP_URL raises MailSetupError naming the variable and never showing the password."""
    with pytest.raises(MailSetupError, match=message) as caught:
        parse_mail_url(url, HOME)
    assert str(caught.value).startswith("HRSYNC_SMTP_URL:")
    assert "secret" not in str(caught.value)


def _refused(code: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(code, "msg", "a@b")])


def _connect_failed(cause: BaseException) -> ConnectFailed:
    error = ConnectFailed(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("error", "verdict"), [
    (_refused(450), "temporary"),
    (_refused(451), "temporary"),
    (_refused(550), "permanent"),
    (_refused(553), "permanent"),
    (aiosmtplib.SMTPDataError(452, "storage"), "temporary"),
    (aiosmtplib.SMTPDataError(554, "rejected"), "permanent"),
    (aiosmtplib.SMTPResponseException(421, "closing"), "connection"),
    (aiosmtplib.SMTPSenderRefused(451, "later", "hr@x"), "temporary"),
    (aiosmtplib.SMTPServerDisconnected("gone"), "connection"),
    (aiosmtplib.SMTPReadTimeoutError("slow"), "connection"),
    (ConnectionResetError("reset"), "connection"),
    (_connect_failed(OSError("refused")), "connection"),
    (_connect_failed(aiosmtplib.SMTPConnectResponseError(421, "busy")), "connection"),
    (aiosmtplib.SMTPNotSupported("SMTPUTF8"), "permanent"),
    (ValueError("bad address"), "permanent"),
])
def test_classify_maps_answers_to_verdicts(error: BaseException, verdict: str) -> None:
    """4xx is temporary, 5xx permanent, 421 and lost connections are connection problems."""
    assert classify(error)[0] == verdict


@pytest.mark.parametrize("error", [
    aiosmtplib.SMTPSenderRefused(550, "not allowed", "hr@x"),
    _connect_failed(aiosmtplib.SMTPAuthenticationError(535, "bad credentials")),
    _connect_failed(aiosmtplib.SMTPHeloError(550, "go away")),
])
def test_setup_refusals_raise_mail_setup_error(error: BaseException) -> None:
    """A 5xx to the session or the sender is the setup's fault: MailSetupError, no message is parked."""
    with pytest.raises(MailSetupError):
        classify(error)


def test_the_reason_keeps_the_servers_code_and_text() -> None:
    """The recorded reason is the server's code and text."""
    assert classify(_refused(550)) == ("permanent", "550 msg")


@pytest.mark.parametrize("retry", [0, 1, 2, 5, 20])
def test_backoff_stays_between_half_and_the_cap(retry: int) -> None:
    """Backoff delays are jittered within [cap/2, cap], cap = min(max, base·2ⁿ)."""
    policy = SendPolicy(base_delay=1.0, max_delay=10.0)
    cap = min(10.0, 2.0 ** retry)
    assert all(cap / 2 <= policy.delay(retry) <= cap for _ in range(50))


@pytest.mark.parametrize(("status", "late", "early", "expected"), [
    ("missing_punch", 0, 0, "missing punch"),
    ("absent", 0, 0, "absent"),
    ("half_day", 0, 5, "half day, early exit 5 min"),
    ("present", 12, 0, "late 12 min"),
    ("present", 3, 7, "late 3 min, early exit 7 min"),
    ("present", 0, 0, ""),
])
def test_exception_summary(status: str, late: int, early: int, expected: str) -> None:
    """A digest line names the exception status and the late/early minutes."""
    assert exception_summary(status, late, early) == expected


def test_html_bodies_are_escaped_and_text_bodies_are_not() -> None:
    """A name with markup is escaped in HTML and kept as is in text."""
    text, html = render_bodies("missing_punch", {"name": "<script>x</script>", "work_date": "2026-03-02",
                                                  "shift_code": "day", "punch_time": "08:58"})
    assert "<script>x</script>" in text
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>" not in html


@pytest.mark.parametrize(("message_id", "name"), [
    ("<0123abcd@hrsync>", "0123abcd@hrsync.eml"),
    ("<../../etc/passwd@x>", ".._.._etc_passwd@x.eml"),
])
def test_eml_file_names_come_from_the_message_id(message_id: str, name: str) -> None:
    """The sink's file is named after the Message-ID, with anything path-like replaced."""
    assert eml_path(HOME, message_id) == HOME / name


def _reference_message(**kw: Any) -> bytes:
    """What `build_message` gave before it assembled messages by hand: `EmailMessage` with `policy.SMTP`."""
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.utils import format_datetime

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = parse_mailbox(kw["sender"])
    to = parse_mailbox(kw["recipient"])
    if kw["recipient_name"]:
        to = Address(display_name=clean_header(kw["recipient_name"], 200), addr_spec=to.addr_spec)
    msg["To"] = to
    msg["Subject"] = clean_header(kw["subject"])
    msg["Date"] = format_datetime(WHEN)
    msg["Message-ID"] = kw["message_id"]
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(kw["body_text"], cte="quoted-printable")
    if kw["body_html"]:
        msg.add_alternative(kw["body_html"], subtype="html", cte="quoted-printable")
    return msg.as_bytes()


_TEXT, _HTML = render_bodies("missing_punch", {"name": "P", "work_date": "2026-03-02", "shift_code": "day",
                                               "punch_time": "08:55"})


@pytest.mark.parametrize(("sender", "recipient", "name", "subject", "text", "html"), [
    ("hrsync <hrsync@example.test>", "e1@example.test", "Person 1", "Missing punch on 2026-03-02", _TEXT, _HTML),
    ("HR Dept <hr@example.test>", "j@example.test", "Jürgen Groß", "Fehlender Stempel am 2. März " + "ä" * 80,
     "Grüße\n" + "x" * 200 + "\n=equals= line\n", "<p>Grüße</p>"),
    ("hr@example.test", "j@example.test", '"Quoted", <angle> name', 'Subject with <angles> & "q" ' + "word " * 30,
     "a b  \ntrailing ", None),
    ("hr@example.test", "j.x+y@mail.example.test", "O'Brien, Seán (ops) " + "n" * 150, "x" * 250, "", None),
    ("hr@example.test", "j@example.test", None, "", "\r\n\r\nline\r\n.\r\n..dots\n", "x"),
    ("hr@example.test", "Name <j@example.test>", "Back\\slash", "tab\there", "=\n=41\n", "<b>=</b>"),
])
def test_the_assembled_message_reads_as_emailmessage_built_it(sender: str, recipient: str, name: str | None,
                                                               subject: str, text: str, html: str | None) -> None:
    """The hand-assembled message (no attachments) parses to the same headers, in the same order, and the
    same parts and bodies as the `EmailMessage` one; 7-bit, CRLF only, no defects."""
    kw = {"sender": sender, "recipient": recipient, "recipient_name": name, "subject": subject,
          "body_text": text, "body_html": html, "message_id": "<x@hrsync>"}
    new = email.message_from_bytes(build_message(**kw, date=WHEN).data, policy=email.policy.default)
    old = email.message_from_bytes(_reference_message(**kw), policy=email.policy.default)
    assert [(k, str(v)) for k, v in new.items() if k != "Content-Type"] == \
        [(k, str(v)) for k, v in old.items() if k != "Content-Type"]
    assert not new.defects
    for got, want in zip(new.walk(), old.walk(), strict=True):
        assert got.get_content_type() == want.get_content_type()
        assert not got.defects
        if not got.is_multipart():
            assert got.get_content() == want.get_content()
    data = build_message(**kw, date=WHEN).data
    data.decode("ascii")
    bare = data.replace(b"\r\n", b"")
    assert b"\n" not in bare
    assert b"\r" not in bare
