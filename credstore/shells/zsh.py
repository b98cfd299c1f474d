"""zsh: POSIX single quoting (``posix.py``) and the ``~/.zshrc`` hook."""

from __future__ import annotations

from credstore.shells.posix import quote
from credstore.shells.posix import render as _render_posix
from credstore.shells.posix_hook import posix_hook

__all__ = ["HOOK", "quote", "render"]

HOOK: str | None = posix_hook("zsh", "zshrc")


def render(assignments: list[tuple[str, str]], unsets: list[str]) -> str:
    return _render_posix(assignments, unsets)
