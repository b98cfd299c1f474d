"""The hook text shared by the POSIX shells (bash, zsh): load credentials into interactive shells.

The text is static for one installation: ``@CMD@`` becomes credstore's command by absolute path (the installed
interpreter with ``-c``, which skips the ``import re`` of pip's console-script wrapper), so PATH order, a missing
``~/.local/bin`` on PATH (Debian's ``~/.profile`` adds it after sourcing ``~/.bashrc``) or a pyenv shim do not
matter, and ``@EXE@`` the package that interpreter imports, tested first with the interpreter ``@PROG@`` itself:
where credstore is gone the hook does
nothing and says nothing; where it was installed again elsewhere (another ``credstore`` on PATH or in
``~/.local/bin``), it says to run ``credstore hook install`` again.

A shell that inherited credstore's exports (a subshell, a tmux pane, ``bash`` typed at a prompt) starts no process
when nothing changed: ``env --hook`` exports ``CREDSTORE_GENERATION`` and writes the same token, the unlock's expiry
and the files the values depend on to a marker file in the private runtime directory (with an mtime just before
the files were checked). The hook compares them with builtins only (``read``, ``[ -nt ]``, ``$EPOCHSECONDS``); any
doubt runs ``env``. Skipping never gives a shell more than its parent already had.

Ctrl-C at the ``Unlock now?`` prompt or the passphrase prompt skips the unlock only: a trap keeps the rest of the
rc file (and ``~/.profile``) running. The prompt is offered only to a shell in the terminal's foreground (``env``
reports it), so a background job is never stopped by a read from the terminal.
"""

from __future__ import annotations

_POSIX_HOOK = """\
# credstore: load your credentials into interactive @SHELL@ shells (installed by: credstore hook install).
# Non-interactive shells (scp, rsync, cron, `@SHELL@ -c`) do nothing; a locked profile is offered an unlock.
case $- in
  *i*)
    if [ -e @EXE@ ] && [ -x @PROG@ ]; then
@PRELUDE@      __credstore_m="${XDG_RUNTIME_DIR:-/run/user/$UID}/credstore"
      [ -O "$__credstore_m" ] || __credstore_m="/dev/shm/credstore-$UID"  # where session_secret falls back to
      __credstore_m="$__credstore_m/hook-${CREDSTORE_PROFILE:-default}"
      __credstore_skip=
      if [ -n "${CREDSTORE_GENERATION-}" ] && [ -O "$__credstore_m" ]; then
        {
          if IFS= read -r __credstore_g && IFS= read -r __credstore_until && \\
            [ "$__credstore_g" = "$CREDSTORE_GENERATION" ] && [ -n "${EPOCHSECONDS-}" ] && \\
            [ "$EPOCHSECONDS" -lt "$__credstore_until" ]; then
            __credstore_skip=1
            while IFS= read -r __credstore_f; do
              if [ "$__credstore_f" -nt "$__credstore_m" ]; then __credstore_skip=; fi
            done
          fi
        } <"$__credstore_m"
      fi
      if [ -z "$__credstore_skip" ]; then
        __credstore_env="$(@CMD@ env --shell @SHELL@ --hook 2>/dev/null)"
        __credstore_rc=$?
        if [ "$__credstore_rc" -eq 4 ] && [ -t 0 ] && [ "$__credstore_env" = "# credstore: foreground" ]; then
          __credstore_trap="$(trap -p INT 2>/dev/null || trap 2>/dev/null)"
          trap ':' INT  # Ctrl-C skips the unlock, never the rest of the rc file
          printf 'credstore: your credentials are locked. Unlock now? [Y/n] ' >&2
          # read in a subshell: Ctrl-C ends it (status 130), where the shell's own `read` would start again
          if __credstore_answer="$(IFS= read -r __credstore_a && printf '%s' "$__credstore_a")"; then
            case $__credstore_answer in
              [Nn]*) ;;
              *) if @CMD@ unlock; then
                   __credstore_env="$(@CMD@ env --shell @SHELL@ --hook)"
                   __credstore_rc=$?
                 fi ;;
            esac
          else
            printf '\\n' >&2
          fi
          trap - INT
          if [ -n "$__credstore_trap" ]; then eval "$__credstore_trap"; fi
        fi
        if [ "$__credstore_rc" -eq 0 ]; then
          eval "$__credstore_env"
        elif [ "$__credstore_rc" -ne 3 ] && [ "$__credstore_rc" -ne 4 ] && [ "$__credstore_rc" -lt 128 ]; then
          printf 'credstore: could not load credentials (exit %s); run `credstore env` to see why\\n' \\
            "$__credstore_rc" >&2
        fi
      fi
      unset __credstore_env __credstore_rc __credstore_answer __credstore_m __credstore_skip __credstore_g \\
        __credstore_until __credstore_f __credstore_trap
    elif command -v credstore >/dev/null 2>&1 || [ -x "$HOME/.local/bin/credstore" ]; then
      # credstore was installed again elsewhere: this hook still names the old install
      printf '%s\\n' 'credstore: the shell hook names an install that is gone; to follow the new one, run:' \\
        '  credstore hook install --shell @SHELL@' >&2
    fi
    ;;
esac
"""

_PRELUDE = {
    "bash": "",
    # zsh keeps $EPOCHSECONDS in a module; loading it starts no process.
    "zsh": "      zmodload -F zsh/datetime p:EPOCHSECONDS 2>/dev/null\n",
}


def posix_hook(shell: str, rc: str) -> str:
    """The template (``@CMD@`` / ``@EXE@`` still to fill in: ``shells.hook_text``). ``rc``: the shell's rc file."""
    del rc  # named in `credstore hook install`, which writes it
    return _POSIX_HOOK.replace("@SHELL@", shell).replace("@PRELUDE@", _PRELUDE.get(shell, ""))
