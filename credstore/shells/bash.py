"""bash: POSIX single quoting (``posix.py``) and the ``~/.bashrc`` hook."""

from __future__ import annotations

from credstore.shells.posix import quote
from credstore.shells.posix import render as _render_posix
from credstore.shells.posix_hook import posix_hook

__all__ = ["HOOK", "quote", "render"]

HOOK: str | None = posix_hook("bash", "bashrc")


def render(assignments: list[tuple[str, str]], unsets: list[str]) -> str:
    return _render_posix(assignments, unsets)
