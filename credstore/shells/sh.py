"""sh (dash, ash, ksh, busybox sh): POSIX single quoting (``posix.py``); no hook (their startup files vary)."""

from __future__ import annotations

from credstore.shells.posix import render as _render_posix

HOOK: str | None = None


def render(assignments: list[tuple[str, str]], unsets: list[str]) -> str:
    return _render_posix(assignments, unsets)
