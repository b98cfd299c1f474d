"""Keep keys and values out of core dumps and away from same-uid debuggers: ``harden()`` at the start of a command.

``prctl(PR_SET_DUMPABLE, 0)`` makes the kernel write no core dump of this process (whatever ``ulimit -c`` and
``/proc/sys/kernel/core_pattern`` say, a pipe to systemd-coredump included), refuses ``ptrace`` attach and
``/proc/PID/mem`` / ``environ`` reads by other processes of the same uid (root still can), and makes ``/proc/PID``
owned by root. ``RLIMIT_CORE`` 0 (the soft limit) is the second lock, for kernels or sandboxes that refuse the prctl.

Cost: one ``_ctypes`` import (shared with the kernel keyring, see ``libc.py``) and two system calls, about 0.5 ms
in a fresh interpreter; ``ctypes`` would cost about 1.5 ms and ``resource`` another 0.2 ms.

``execve`` makes the new program dumpable again by itself; the soft core limit is inherited, so ``credstore exec``
calls ``restore_for_exec()`` just before ``execve``: the command gets the core limit the user had set.
"""

from __future__ import annotations

import sys

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
RLIMIT_CORE = 4  # Linux, every architecture

_core_limit_before: tuple[int, int] | None = None


def harden() -> None:
    """Make this process non-dumpable and set its soft core-size limit to 0. Never raises; idempotent."""
    global _core_limit_before
    if not sys.platform.startswith("linux"):
        _harden_portable()
        return
    try:
        from credstore.crypto import libc

        if _core_limit_before is None:
            soft, hard = libc.getrlimit(RLIMIT_CORE)
            _core_limit_before = (soft, hard)
            libc.setrlimit(RLIMIT_CORE, 0, hard)
        libc.prctl(PR_SET_DUMPABLE, 0)
    except OSError:
        _harden_portable()


def _harden_portable() -> None:
    """Without libc access: at least the core-size limit (the ``resource`` module)."""
    global _core_limit_before
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        if _core_limit_before is None:
            _core_limit_before = (soft, hard)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    except (ImportError, OSError, ValueError):
        pass


def is_dumpable() -> bool | None:
    """This process's dumpable flag (None where it cannot be read)."""
    try:
        from credstore.crypto import libc

        return libc.prctl(PR_GET_DUMPABLE) != 0
    except OSError:
        return None


def restore_for_exec() -> None:
    """Give back the soft core-size limit ``harden`` lowered, right before ``execve`` of the user's command.

    The process stays non-dumpable until ``execve`` replaces it (the kernel resets the flag for the new program).
    """
    if _core_limit_before is None:
        return
    soft, hard = _core_limit_before
    try:
        from credstore.crypto import libc

        libc.setrlimit(RLIMIT_CORE, soft, hard)
    except OSError:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
        except (ImportError, OSError, ValueError):
            pass
