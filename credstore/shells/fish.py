"""fish shell.

Inside fish single quotes ``\\\\`` and ``\\'`` are escapes; every other character, newlines included, is literal.
A value is written as single-quoted segments that hold neither ``\\`` nor ``'``; each of those two characters goes
between two segments as the unquoted escape ``\\\\`` or ``\\'`` (``a\\b'c`` -> ``'a'\\\\'b'\\''c'``), and fish joins
the pieces into one word.

Safe in every locale, like the POSIX form (credstore/shells/posix.py): the byte before every backslash of the
output is a quote or a backslash, never a byte of the value, so no multibyte character (GBK, Big5 and Shift_JIS
have second bytes of 0x5C) can take an escape's backslash as its own. Writing ``\\\\`` and ``\\'`` inside the
quotes, as before, let a UTF-8 value read in such a locale end the quote early and run a later value as a
command (tests/test_shells_locale.py).

``set -gx`` sets a global exported variable (it shadows, but does not touch, a universal variable of the same
name); ``set -e`` erases it again. Every value starts with a quote, so none is taken for an option.
"""

from __future__ import annotations

_OUTSIDE_QUOTES = str.maketrans({"\\": "'\\\\'", "'": "'\\''"})


def quote(value: str) -> str:
    """Quote ``value`` for fish, in any locale."""
    return "'" + value.translate(_OUTSIDE_QUOTES) + "'"


def render(assignments: list[tuple[str, str]], unsets: list[str]) -> str:
    lines = [f"set -e {name}" for name in unsets]
    lines += [f"set -gx {name} {quote(value)}" for name, value in assignments]
    return "".join(line + "\n" for line in lines)


HOOK: str | None = """\
# credstore: load your credentials into interactive fish shells (installed by: credstore hook install).
# Non-interactive shells do nothing; a locked profile is offered an unlock (asked on /dev/tty: stdin may be a pipe).
# A fish that inherited credstore's exports starts no process when the marker file says nothing changed (see
# credstore/shells/posix_hook.py; fish has no clock builtin, so the unlock's expiry is not checked here).
# Ctrl-C at the question skips the unlock; at the passphrase prompt fish itself cancels the rest of config.fish.
if status is-interactive; and test -e @EXE@; and test -x @PROG@
    set -l __credstore_skip 0
    if set -q CREDSTORE_GENERATION
        set -l __credstore_d /run/user/@UID@
        if set -q XDG_RUNTIME_DIR; and test -n "$XDG_RUNTIME_DIR"
            set __credstore_d $XDG_RUNTIME_DIR
        end
        set -l __credstore_p default
        if set -q CREDSTORE_PROFILE; and test -n "$CREDSTORE_PROFILE"
            set __credstore_p $CREDSTORE_PROFILE
        end
        set -l __credstore_m $__credstore_d/credstore/hook-$__credstore_p
        if not test -O $__credstore_m
            set __credstore_m /dev/shm/credstore-@UID@/hook-$__credstore_p
        end
        if test -O $__credstore_m
            set -l __credstore_i 0
            while read -l __credstore_line
                set __credstore_i (math $__credstore_i + 1)
                if test $__credstore_i -eq 1
                    test "$__credstore_line" = "$CREDSTORE_GENERATION"; and set __credstore_skip 1
                else if test $__credstore_i -gt 2; and test "$__credstore_line" -nt $__credstore_m
                    set __credstore_skip 0
                end
            end <$__credstore_m
        end
    end
    if test $__credstore_skip -eq 0
        set -l __credstore_env (@CMD@ env --shell fish --hook 2>/dev/null)
        set -l __credstore_rc $status
        if test $__credstore_rc -eq 4; and isatty stderr; and test "$__credstore_env" = "# credstore: foreground"
            if read -l -P 'credstore: your credentials are locked. Unlock now? [Y/n] ' __credstore_answer </dev/tty
                if not string match -qi 'n*' -- "$__credstore_answer"
                    if @CMD@ unlock </dev/tty
                        set __credstore_env (@CMD@ env --shell fish --hook)
                        set __credstore_rc $status
                    end
                end
            end
        end
        if test $__credstore_rc -eq 0
            string join \\n -- $__credstore_env | source
        else if test $__credstore_rc -ne 3; and test $__credstore_rc -ne 4; and test $__credstore_rc -lt 128
            echo "credstore: could not load credentials (exit $__credstore_rc); run `credstore env` to see why" >&2
        end
    end
else if status is-interactive; and begin; command -q credstore; or test -x $HOME/.local/bin/credstore; end
    # credstore was installed again elsewhere: this hook still names the old install
    echo 'credstore: the shell hook names an install that is gone; to follow the new one, run:' \\
        'credstore hook install --shell fish' >&2
end
"""
