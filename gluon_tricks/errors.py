"""Errors that are the user's to fix (a flag, a file, a record), and the one convention of
every command line for them: the message on one line of stderr (``error: ...``) and exit
status 2. Everything else is a bug and keeps its traceback."""
import sys


class UserError(ValueError):
    """Something the user handed us is wrong; the message is one line naming it."""


class RunError(UserError):
    """A training run cannot start or go on as asked (flags, devices, run folder, teacher)."""


def one_line(e, limit=200):
    """An exception's message folded onto one line, at most ``limit`` characters: for
    quoting MXNet's multi-line errors inside ours."""
    return " ".join(str(e).split())[:limit]


def run_cli(main, argv=None):
    """Call ``main(argv)``; a UserError becomes ``error: ...`` on stderr and exit status 2.
    Returns the exit status (``main``'s, 0 if it returns None)."""
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if "cannot open shared object file" not in str(e):
            raise
        # a CUDA build of MXNet without one of its libraries (or without the driver)
        print(f"error: {one_line(e)}: install MXNet's CUDA libraries with `make gpu-install` "
              "(or the CPU wheel on a host without an NVIDIA GPU); docs/gpu.md", file=sys.stderr)
        return 2
