"""Entry point of the ``credstore`` command.

Every failure ends here as ``credstore: <one line>`` on stderr and a documented exit code (``errors.py``), never a
traceback. Click is imported only for the full CLI.
"""

from __future__ import annotations

import os
import sys

from credstore.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_IO, EXIT_USAGE, CredstoreError


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"credstore: {message}\n")
    return code


def _encoding_of(stream: object) -> str:
    return str(getattr(stream, "encoding", None) or "unknown")


def _unicode_failure(exc: UnicodeError) -> int:
    """A value this locale's character set cannot carry. Python's own message quotes the character and its offset
    in the text (a piece of the secret): name only the character set."""
    if isinstance(exc, UnicodeEncodeError):
        return _fail(
            f"a value cannot be written in this locale's character set ({_encoding_of(sys.stdout)}): use a UTF-8 "
            "locale (e.g. LC_ALL=C.UTF-8) or PYTHONIOENCODING=utf-8",
            EXIT_FAILURE,
        )
    return _fail(
        f"cannot read text in this locale's character set ({_encoding_of(sys.stdin)}): use a UTF-8 locale "
        "(e.g. LC_ALL=C.UTF-8)",
        EXIT_USAGE,
    )


def _debug_traceback(exc: BaseException) -> None:
    """CREDSTORE_DEBUG=1: where a bug happened (frames, code lines, exception types), never an exception's message,
    which can quote data (a value, a piece of one)."""
    import traceback

    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for position, error in enumerate(reversed(chain)):
        if position:
            sys.stderr.write("\nwhile handling it, another exception:\n")
        sys.stderr.write("Traceback (most recent call last):\n")
        sys.stderr.write("".join(traceback.format_list(traceback.extract_tb(error.__traceback__))))
        sys.stderr.write(f"{type(error).__module__}.{type(error).__qualname__} (message withheld: it may quote data)\n")


def _exit_now(code: int) -> None:
    """End a hot-path command once its output is out: no interpreter teardown (module and object destruction cost
    milliseconds and do nothing useful here). Only for the real command line (``argv`` None), never in-process."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = EXIT_FAILURE
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    from credstore.crypto.hardening import harden

    harden()  # before any key or value is read: no core dump, no same-uid ptrace (SECURITY.md)
    args = sys.argv[1:] if argv is None else argv
    if sys.stdout is None:  # started with descriptor 1 closed (`credstore env >&-`)
        return _fail("standard output is closed: nothing can be printed (open it, e.g. >/dev/null)", EXIT_USAGE)
    try:
        from credstore.cli import fast

        code = fast.run(args)
        if code is not None:
            if argv is None:
                _exit_now(code)
            return code
        import click

        from credstore.cli.main import cli

        try:
            result = cli.main(args=args, prog_name="credstore", standalone_mode=False)
        except click.ClickException as exc:
            first = exc.format_message().splitlines()[0] if exc.format_message() else "usage error"
            return _fail(first, EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
        except click.exceptions.Abort:  # Ctrl-C or Ctrl-D at a click prompt
            return _fail("aborted", EXIT_INTERRUPTED)
    except CredstoreError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:  # Ctrl-C
        return _fail("interrupted", EXIT_INTERRUPTED)
    except EOFError:  # Ctrl-D at a prompt
        return _fail("aborted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return EXIT_FAILURE
    except OSError as exc:
        return _fail(f"{exc.strerror or type(exc).__name__}", EXIT_IO)
    except UnicodeError as exc:
        return _unicode_failure(exc)
    except Exception as exc:
        # A bug. Its message could quote data: only its type, and with CREDSTORE_DEBUG=1 where it happened.
        if os.environ.get("CREDSTORE_DEBUG"):
            _debug_traceback(exc)
            return EXIT_FAILURE
        return _fail(f"internal error ({type(exc).__name__}); rerun with CREDSTORE_DEBUG=1 for details", EXIT_FAILURE)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
