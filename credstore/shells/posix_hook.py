"""The hook text shared by the POSIX shells (bash, zsh): load credentials into interactive shells."""

from __future__ import annotations

_POSIX_HOOK = """\
# credstore: load your credentials into interactive {shell} shells.
# Put this in ~/.{rc}:  eval "$(credstore hook {shell})"
# Non-interactive shells (scp, rsync, cron, `{shell} -c`) do nothing; a locked profile is offered an unlock.
case $- in
  *i*)
    if command -v credstore >/dev/null 2>&1; then
      __credstore_env="$(credstore env --shell {shell} 2>/dev/null)"
      __credstore_rc=$?
      if [ "$__credstore_rc" -eq 4 ] && [ -t 0 ]; then
        printf 'credstore: your credentials are locked. Unlock now? [Y/n] ' >&2
        read -r __credstore_answer
        case $__credstore_answer in
          [Nn]*) ;;
          *) if credstore unlock; then
               __credstore_env="$(credstore env --shell {shell})"
               __credstore_rc=$?
             fi ;;
        esac
      fi
      if [ "$__credstore_rc" -eq 0 ]; then
        eval "$__credstore_env"
      elif [ "$__credstore_rc" -ne 3 ] && [ "$__credstore_rc" -ne 4 ]; then
        printf 'credstore: could not load credentials (exit %s); run `credstore env` to see why\\n' \
          "$__credstore_rc" >&2
      fi
      unset __credstore_env __credstore_rc __credstore_answer
    fi
    ;;
esac
"""


def posix_hook(shell: str, rc: str) -> str:
    return _POSIX_HOOK.format(shell=shell, rc=rc)
