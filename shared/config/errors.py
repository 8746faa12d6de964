"""Errors every layer may raise, with the exit codes the CLI maps them to."""

from __future__ import annotations


class HrsyncError(Exception):
    """Base of hrsync's own errors; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(HrsyncError):
    """Bad settings or bad input: the message names the variable or field (CLI exit code 2)."""

    exit_code = 2


class CheckFailed(HrsyncError):
    """The start-up self-check refused to start (DESIGN §9)."""

    exit_code = 1
