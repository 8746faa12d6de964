"""Console users: the users file (`HRSYNC_WEB_USERS_FILE`) and scrypt password hashes.

The file is JSON, `{"users": {NAME: {"hash": "scrypt$n$r$p$salt$key", "role": "viewer"|"operator"}}}`,
written with mode 0600 by `hrsync web adduser`. Only hashes are stored; a hash never leaves this module
in a response (`User` carries the name and role only).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.config.errors import ConfigError

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# scrypt cost: 16 MiB and ~50 ms per check on this machine class — slow for guessing, fine for a login.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8


@dataclass(frozen=True)
class User:
    """A signed-in person: name and role (never the hash)."""

    name: str
    role: Role

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def hash_password(password: str) -> str:
    """A new salted scrypt hash of `password` in the users file's text form."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(key)))


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (constant-time compare; False for a malformed hash)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(key)
        found = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(expected), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class UserStore:
    """Names → (hash, role), from the users file or made in memory (the one-time user of a loopback console)."""

    def __init__(self, entries: Mapping[str, tuple[str, Role]]) -> None:
        self._entries = dict(entries)

    @classmethod
    def load(cls, path: Path) -> UserStore:
        """Read the users file; `ConfigError` naming HRSYNC_WEB_USERS_FILE when it is missing or malformed."""
        return cls(read_users_file(path))

    @classmethod
    def one_time(cls, name: str = "operator") -> tuple[UserStore, str]:
        """An in-memory store with one operator and a fresh random password: (store, password)."""
        password = secrets.token_urlsafe(12)
        return cls({name: (hash_password(password), "operator")}), password

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when name and password match, else None (as slow either way)."""
        entry = self._entries.get(name)
        ok = verify_password(password, entry[0] if entry else _DUMMY_HASH)
        return User(name, entry[1]) if ok and entry else None

    def get(self, name: str) -> User | None:
        """The user still in the store under `name` (a session of a removed user ends)."""
        entry = self._entries.get(name)
        return User(name, entry[1]) if entry else None


def read_users_file(path: Path) -> dict[str, tuple[str, Role]]:
    """The users file as name → (hash, role)."""
    where = f"HRSYNC_WEB_USERS_FILE ({path})"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file (create it with `hrsync web adduser NAME`)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: not readable JSON ({exc})") from None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, dict):
        raise ConfigError(f'{where}: expected {{"users": {{NAME: {{"hash": ..., "role": ...}}}}}}')
    found: dict[str, tuple[str, Role]] = {}
    for name, entry in users.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str) or entry.get("role") not in ROLES:
            raise ConfigError(f"{where}: users.{name}: needs a hash and a role (viewer or operator)")
        found[name] = (entry["hash"], entry["role"])
    return found


def add_user(path: Path, name: str, password: str, role: str) -> bool:
    """Add or replace `name` in the users file (created if missing, mode 0600); True when it was new."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"NAME: {name!r}: 1-64 of A-Z a-z 0-9 _ . @ - (starting with a letter or digit)")
    if role not in ROLES:
        raise ConfigError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"password: at least {MIN_PASSWORD} characters")
    users = read_users_file(path) if path.exists() else {}
    new = name not in users
    users[name] = (hash_password(password), "operator" if role == "operator" else "viewer")
    text = json.dumps({"users": {n: {"hash": h, "role": r} for n, (h, r) in sorted(users.items())}}, indent=2)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(temporary, path)  # atomic: a console reading the file never sees half of it
    return new
