"""Entry point of the ``credstore`` command.

Every failure ends here as ``credstore: <one line>`` on stderr and a documented exit code (``errors.py``), never a
traceback. Click is imported only for the full CLI.
"""

from __future__ import annotations

import os
import sys

from credstore.errors import EXIT_FAILURE, EXIT_IO, EXIT_USAGE, CredstoreError


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"credstore: {message}\n")
    return code


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
        except click.exceptions.Abort:
            return _fail("aborted", EXIT_FAILURE)
    except CredstoreError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return EXIT_FAILURE
    except OSError as exc:
        return _fail(f"{exc.strerror or type(exc).__name__}", EXIT_IO)
    except Exception as exc:
        # A bug. Its message could quote data, so show only the type unless asked for the traceback.
        if os.environ.get("CREDSTORE_DEBUG"):
            raise
        return _fail(f"internal error ({type(exc).__name__}); rerun with CREDSTORE_DEBUG=1 for details", EXIT_FAILURE)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
