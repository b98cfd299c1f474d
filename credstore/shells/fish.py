"""fish shell.

Inside fish single quotes only ``\\\\`` and ``\\'`` are escapes; every other character, newlines included, is
literal. So a value is written as ``'...'`` with ``\\`` -> ``\\\\`` and ``'`` -> ``\\'``. ``set -gx`` sets a
global exported variable (it shadows, but does not touch, a universal variable of the same name); ``set -e``
erases it again. fish's option parser stops at the first non-option, so a value starting with ``-`` is safe.
"""

from __future__ import annotations

from collections.abc import Sequence


def quote(value: str) -> str:
    """Single-quote ``value`` for fish."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(assignments: Sequence[tuple[str, str]], unsets: Sequence[str]) -> str:
    lines = [f"set -e {name}" for name in unsets]
    lines += [f"set -gx {name} {quote(value)}" for name, value in assignments]
    return "".join(line + "\n" for line in lines)


HOOK: str | None = """\
# credstore: load your credentials into interactive fish shells.
# Put this in ~/.config/fish/config.fish:  credstore hook fish | source
# Non-interactive shells do nothing; a locked profile is offered an unlock (asked on /dev/tty: stdin is the pipe).
if status is-interactive; and command -q credstore
    set -l __credstore_env (credstore env --shell fish 2>/dev/null)
    set -l __credstore_rc $status
    if test $__credstore_rc -eq 4; and isatty stderr
        read -l -P 'credstore: your credentials are locked. Unlock now? [Y/n] ' __credstore_answer </dev/tty
        if not string match -qi 'n*' -- "$__credstore_answer"
            if credstore unlock </dev/tty
                set __credstore_env (credstore env --shell fish)
                set __credstore_rc $status
            end
        end
    end
    if test $__credstore_rc -eq 0
        string join \\n -- $__credstore_env | source
    else if test $__credstore_rc -ne 3; and test $__credstore_rc -ne 4
        echo "credstore: could not load credentials (exit $__credstore_rc); run `credstore env` to see why" >&2
    end
end
"""
