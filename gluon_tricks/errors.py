"""Errors that are the user's to fix (a flag, a file, a record), and the one convention of
every command line for them: the message on one line of stderr (``error: ...``) and exit
status 2. Everything else is a bug and keeps its traceback."""
import re
import sys


class UserError(ValueError):
    """Something the user handed us is wrong; the message is one line naming it."""


class RunError(UserError):
    """A training run cannot start or go on as asked (flags, devices, run folder, teacher)."""


# MXNet's messages carry a stack: "Traceback (most recent call last):" and its indented
# File lines (MXNet 1.9's C++ frames, or Python's), or "Stack trace:" and "[bt] (0)
# libmxnet.so(...)" lines (older builds), a line maybe behind a log prefix "[12:34:56]
# ../src/io/x.cc:209: "
_TRACEBACK = "Traceback (most recent call last):"
_STACK_TRACE = re.compile(r"^Stack trace( returned \d+ entries)?:$|^\[bt\]")
_MXNET_LOG_PREFIX = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+:\d+: ")


def one_line(e, limit=200):
    """An exception's message as one line of at most ``limit`` characters, for quoting
    MXNet's errors inside ours: its first line that is neither blank nor part of a
    traceback or C++ stack trace, without MXNet's log prefix."""
    in_traceback = False
    for line in str(e).splitlines():
        if line.strip() == _TRACEBACK:
            in_traceback = True
        elif in_traceback and line[:1].isspace():
            continue  # a frame or its source line; the traceback ends at an unindented line
        else:
            in_traceback = False
            line = _MXNET_LOG_PREFIX.sub("", line.strip())
            if _STACK_TRACE.match(line):
                break
            if line:
                return " ".join(line.split())[:limit]
    return type(e).__name__ if isinstance(e, BaseException) else ""


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
