"""Errors every layer may raise, with the exit codes the CLI maps them to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

_Error = TypeVar("_Error", bound=Mapping[str, Any])


class HrsyncError(Exception):
    """Base of hrsync's own errors; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(HrsyncError):
    """Bad settings or bad input: the message names the variable or field (CLI exit code 2)."""

    exit_code = 2


class CheckFailed(HrsyncError):
    """The start-up self-check refused to start (DESIGN §9)."""

    exit_code = 1


def in_field_order(errors: Iterable[_Error]) -> list[_Error]:
    """Validation errors (pydantic's `errors()`) ordered by field path, then message: hrsync's own order,
    so a reason made of several reads the same whatever order a pydantic release lists them in."""

    def key(error: _Error) -> tuple[tuple[tuple[int, int, str], ...], str]:
        # list indexes compare as numbers (items[2] before items[10]), names as text; an index sorts first
        loc = tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in error.get("loc", ()))
        return loc, str(error.get("msg", ""))

    return sorted(errors, key=key)
