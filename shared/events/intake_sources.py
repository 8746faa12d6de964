"""The HTTP intake's sources file (`HRSYNC_INTAKE_SOURCES_FILE`, YAML; DESIGN §12).

```yaml
sources:
  payroll:
    secrets: ["whsec_<base64>"]        # several while one is rotated; Standard Webhooks' format
    types: [hrsync.employee.changed]   # the event types this source may send
    rate_per_second: 50                # optional, default 100 (token bucket, burst = the rate)
```

Other keys may be added and are ignored. A bad file is a `ConfigError` naming the variable and the key path.
Secrets are kept as bytes that never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from shared.config.errors import ConfigError
from shared.events.models import EVENT_TYPES

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the format's prefix, not a secret
MIN_SECRET_BYTES: Final = 24  # Standard Webhooks: secrets of 24 to 64 random bytes
DEFAULT_RATE: Final = 100.0
MAX_RATE: Final = 100_000.0
_VARIABLE: Final = "HRSYNC_INTAKE_SOURCES_FILE"


@dataclass(frozen=True)
class Source:
    """One sender: its name (every event it sends must carry it as `source`), keys, types and rate."""

    name: str
    keys: tuple[bytes, ...] = field(repr=False)
    types: frozenset[str]
    rate_per_second: float = DEFAULT_RATE


@dataclass(frozen=True)
class Sources:
    """The sources by name."""

    by_name: Mapping[str, Source]

    @property
    def highest_rate(self) -> float:
        """The highest `rate_per_second` of any source (what the webhook handshake announces)."""
        return max(source.rate_per_second for source in self.by_name.values())


def decode_secret(secret: str) -> bytes:
    """`whsec_<base64>` (the prefix optional, as Standard Webhooks' libraries take it) → the key bytes."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not whsec_<base64>") from None


def load_sources(path: Path) -> Sources:
    """Read and check the sources file; `ConfigError` (one line: variable, key path, problem) if it is bad."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{_VARIABLE}: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{_VARIABLE}: {path} is not YAML{at}") from None
    return parse_sources(document)


def parse_sources(document: Any) -> Sources:
    """The sources of a parsed YAML document; `ConfigError` naming the key path of the first problem."""
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict) or not document["sources"]:
        _fail("sources", "expected a mapping of source names to {secrets, types}")
    found: dict[str, Source] = {}
    owner: dict[bytes, str] = {}
    for name, entry in document["sources"].items():
        where = f"sources.{name}"
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            _fail(where, "a source name is a non-empty string without surrounding blanks")
        if not isinstance(entry, dict):
            _fail(where, "expected a mapping with secrets and types")
        keys = _keys(entry.get("secrets"), f"{where}.secrets")
        for key in keys:
            if key in owner:  # the signature names the source: one key must belong to one source
                _fail(f"{where}.secrets", f"a secret of source {owner[key]!r} too")
            owner[key] = name
        found[name] = Source(name, keys, _types(entry.get("types"), f"{where}.types"),
                             _rate(entry.get("rate_per_second", DEFAULT_RATE), f"{where}.rate_per_second"))
    return Sources(found)


def _keys(value: Any, where: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not value:
        _fail(where, "expected a non-empty list of whsec_<base64> secrets")
    keys = []
    for index, secret in enumerate(value):
        if not isinstance(secret, str):
            _fail(f"{where}[{index}]", "expected a string whsec_<base64>")
        try:
            key = decode_secret(secret)
        except ValueError as exc:
            _fail(f"{where}[{index}]", str(exc))
        if len(key) < MIN_SECRET_BYTES:
            _fail(f"{where}[{index}]", f"{len(key)} bytes; a secret needs at least {MIN_SECRET_BYTES} random bytes")
        keys.append(key)
    return tuple(keys)


def _types(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        _fail(where, "expected a non-empty list of event types")
    for index, type_ in enumerate(value):
        if type_ not in EVENT_TYPES:
            _fail(f"{where}[{index}]", f"{type_!r} is not one of {', '.join(EVENT_TYPES)}")
    return frozenset(value)


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_RATE:
        _fail(where, f"expected a number of events per second above 0 and at most {MAX_RATE:.0f}")
    return float(value)


def _fail(where: str, problem: str) -> Any:
    raise ConfigError(f"{_VARIABLE}: {where}: {problem}")
