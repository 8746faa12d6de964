"""Jinja2 templates of the notification bodies: ``templates/<kind>.txt.j2`` and ``<kind>.html.j2``.

HTML templates are autoescaped (a name like ``<script>`` arrives as text); text templates are not.
Undefined variables raise, so a template and its caller cannot drift apart silently.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def environment() -> Environment:
    """The process's template environment (templates are read once and cached by Jinja2; they ship with the
    package, so a cached one is never checked against its file again: two `stat` calls less per mail built)."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        auto_reload=False,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render_bodies(kind: str, context: dict[str, Any]) -> tuple[str, str]:
    """The text and HTML bodies of a notification of `kind`."""
    env = environment()
    text = env.get_template(f"{kind}.txt.j2").render(context)
    html = env.get_template(f"{kind}.html.j2").render(context)
    return text, html
