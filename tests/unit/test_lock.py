"""`requirements/dev.lock` (what `.ci/run` installs) pins every dependency of `pyproject.toml` to a version its
range allows, so a lock left behind by a changed dependency fails here, not on a fresh machine."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def pinned() -> dict[str, Version]:
    """name → version of every `name==version` line of the lock."""
    pins = {}
    for line in (ROOT / "requirements" / "dev.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = Version(version.split(";")[0].strip())
    return pins


def test_the_lock_pins_every_dependency_within_its_range() -> None:
    """Each base and `[dev]` requirement is in the lock, at a version its specifier allows."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in (*project["dependencies"], *project["optional-dependencies"]["dev"])]
    pins = pinned()
    missing = [str(r) for r in wanted if canonicalize_name(r.name) not in pins]
    outside = [f"{r} (locked {pins[canonicalize_name(r.name)]})" for r in wanted
               if canonicalize_name(r.name) in pins and not r.specifier.contains(pins[canonicalize_name(r.name)],
                                                                                  prereleases=True)]
    assert missing == [], "refresh requirements/dev.lock (README: the lock file)"
    assert outside == [], "refresh requirements/dev.lock (README: the lock file)"
