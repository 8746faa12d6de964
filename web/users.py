"""Console users: the users file (`HRSYNC_WEB_USERS_FILE`) and scrypt password hashes.

The file is JSON, `{"users": {NAME: {"hash": "scrypt$n$r$p$salt$key", "role": "viewer"|"operator"}}}`,
written atomically with mode 0600 by `hrsync web adduser|passwd|deluser`. The console reads it again
whenever it changes (checked at every request), so a removed user is out and a downgraded one a viewer at
their next request. Only hashes are stored; a hash never leaves this module in a response (`User` carries
the name, the role and a fingerprint of the hash that sessions are bound to).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from shared.config.errors import ConfigError

log = structlog.get_logger(__name__)
Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# scrypt cost as OWASP recommends (n=2^17, r=8, p=1): 128 MiB and a few hundred ms per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
SCRYPT_MAXMEM = 256 * 1024 * 1024
MIN_PASSWORD = 8


@dataclass(frozen=True)
class User:
    """A signed-in person: name, role and `credential` (a fingerprint of their hash: a new password or a
    replaced entry changes it, which ends the sessions made with the old one)."""

    name: str
    role: Role
    credential: str = ""

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def hash_password(password: str) -> str:
    """A new salted scrypt hash of `password` in the users file's text form."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32,
                         maxmem=SCRYPT_MAXMEM)
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(key)))


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (constant-time compare; False for a malformed hash)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(key)
        found = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(expected), maxmem=SCRYPT_MAXMEM)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


def is_outdated(stored: str) -> bool:
    """Whether a hash was made with weaker scrypt parameters than today's (it is redone at the next sign-in)."""
    parts = stored.split("$")
    try:
        return len(parts) != 6 or (int(parts[1]), int(parts[2]), int(parts[3])) < (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    except ValueError:
        return True


def fingerprint(stored: str) -> str:
    """A short digest of a stored hash: what a session remembers of the credential it was made with."""
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class UserStore:
    """Names → (hash, role): from the users file (read again when it changes) or made in memory (the one-time
    user of a loopback console)."""

    def __init__(self, entries: Mapping[str, tuple[str, Role]], path: Path | None = None) -> None:
        self._entries = dict(entries)
        self._path = path
        self._seen = _file_state(path) if path is not None else None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> UserStore:
        """Read the users file; `ConfigError` naming HRSYNC_WEB_USERS_FILE when it is missing or malformed."""
        return cls(read_users_file(path), path)

    @classmethod
    def one_time(cls, name: str = "operator") -> tuple[UserStore, str]:
        """An in-memory store with one operator and a fresh random password: (store, password)."""
        password = secrets.token_urlsafe(12)
        return cls({name: (hash_password(password), "operator")}), password

    def _current(self) -> dict[str, tuple[str, Role]]:
        """The entries as the file has them now (read again when its size, time or inode changed; a file
        that went missing or became unreadable leaves no user: the console fails closed)."""
        if self._path is None:
            return self._entries
        state = _file_state(self._path)
        with self._lock:
            if state != self._seen:
                try:
                    self._entries = read_users_file(self._path)
                except ConfigError as exc:
                    log.warning("web.users_file_unreadable", error=str(exc))
                    self._entries = {}
                self._seen = state
            return self._entries

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when name and password match, else None (as slow either way). A hash made with older
        scrypt parameters is replaced by one with today's in the users file."""
        entry = self._current().get(name)
        ok = verify_password(password, entry[0] if entry else _DUMMY_HASH)
        if not (ok and entry):
            return None
        stored = entry[0]
        if self._path is not None and is_outdated(stored):
            stored = _rehash(self._path, name, password, stored) or stored
        return User(name, entry[1], fingerprint(stored))

    def get(self, name: str) -> User | None:
        """The user in the store under `name` now (None: removed, and their sessions end)."""
        entry = self._current().get(name)
        return User(name, entry[1], fingerprint(entry[0])) if entry else None


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


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


def _write_users_file(path: Path, users: Mapping[str, tuple[str, Role]]) -> None:
    """Replace the users file atomically (a console reading it never sees half of it), mode 0600; the
    temporary file has an unpredictable name and is created exclusively (O_EXCL)."""
    text = json.dumps({"users": {n: {"hash": h, "role": r} for n, (h, r) in sorted(users.items())}}, indent=2)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"password: at least {MIN_PASSWORD} characters")


def add_user(path: Path, name: str, password: str, role: str) -> bool:
    """Add or replace `name` in the users file (created if missing, mode 0600); True when it was new.
    Replacing a user ends their sessions (their hash changes)."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"NAME: {name!r}: 1-64 of A-Z a-z 0-9 _ . @ - (starting with a letter or digit)")
    if role not in ROLES:
        raise ConfigError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    _check_password(password)
    users = read_users_file(path) if path.exists() else {}
    new = name not in users
    users[name] = (hash_password(password), "operator" if role == "operator" else "viewer")
    _write_users_file(path, users)
    return new


def change_password(path: Path, name: str, password: str) -> None:
    """Give an existing user a new password (role kept): their sessions end at their next request."""
    _check_password(password)
    users = read_users_file(path)
    if name not in users:
        raise ConfigError(f"NAME: no user {name!r} in {path}")
    users[name] = (hash_password(password), users[name][1])
    _write_users_file(path, users)


def delete_user(path: Path, name: str) -> None:
    """Remove a user from the users file: their sessions end at their next request."""
    users = read_users_file(path)
    if users.pop(name, None) is None:
        raise ConfigError(f"NAME: no user {name!r} in {path}")
    _write_users_file(path, users)


def _rehash(path: Path, name: str, password: str, stored: str) -> str | None:
    """Store a hash of `password` with today's parameters if the entry is still `stored`; the new hash
    (None when the entry changed meanwhile or the file could not be written)."""
    try:
        users = read_users_file(path)
        if users.get(name, ("", ""))[0] != stored:
            return None
        fresh = hash_password(password)
        users[name] = (fresh, users[name][1])
        _write_users_file(path, users)
    except (ConfigError, OSError) as exc:
        log.warning("web.rehash_failed", user=name, error=str(exc))
        return None
    return fresh
