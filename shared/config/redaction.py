"""Keep secrets out of logs, traces and CLI output."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# Keys whose values are secrets wherever they appear (log fields, settings, ODBC strings).
_SECRET_KEY = re.compile(r"(pass(word)?|pwd|secret|token|api[_-]?key|credential)", re.IGNORECASE)
# user:password@ inside any URL-looking text.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]*)@", re.I)
# PWD=...; / Password=...; inside ODBC connection strings (value may be {braced}).
_ODBC_PASSWORD = re.compile(r"(?P<key>\b(?:pwd|password)\s*=\s*)(?P<val>\{[^}]*\}|[^;]*)", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """True for a field name that holds a secret (password, token, api key...)."""
    return bool(_SECRET_KEY.search(key))


def redact_url(url: str) -> str:
    """Return `url` with its password replaced by ``***`` (user and host kept, for diagnosis)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    userinfo = f"{parts.username}:{MASK}" if parts.username else f":{MASK}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}"))


def redact_text(text: str) -> str:
    """Mask passwords embedded in free text: URLs with credentials and ODBC ``PWD=`` pairs."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _ODBC_PASSWORD.sub(lambda m: f"{m['key']}{MASK}", text)


def redact_value(key: str, value: Any) -> Any:
    """Redact one field: secrets by key name, embedded credentials in strings, recursively."""
    if is_secret_key(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    return value
