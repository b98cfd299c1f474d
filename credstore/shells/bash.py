"""bash: POSIX single quoting (``posix.py``) and the ``~/.bashrc`` hook."""

from __future__ import annotations

from credstore.shells.posix import quote
from credstore.shells.posix import render as _render_posix

__all__ = ["HOOK", "quote", "render"]  # noqa: F822 - HOOK comes from __getattr__


def __getattr__(name: str) -> str:
    """``HOOK``, made when asked for: rendering (every shell start) does not import the hook's text."""
    if name == "HOOK":
        from credstore.shells.posix_hook import posix_hook

        return posix_hook("bash", "bashrc")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def render(assignments: list[tuple[str, str]], unsets: list[str]) -> str:
    return _render_posix(assignments, unsets)
