"""The one error convention of the report command lines (``tools/plot_*.py``,
``tools/results_table.py``, ``tools/export_gluoncv.py``)."""
import os
import sys

from ..errors import UserError

# Where a tool writes when no --out is given: an untracked folder (runs/ is ignored by git),
# so that running a tool never changes the repository; the figures under docs/results are
# redrawn only on request (`make figures`, or an explicit --out).
DEFAULT_OUT = os.path.join("runs", "figures")


def run_cli(main, argv=None):
    """Call ``main(argv)``; a UserError becomes ``error: ...`` on stderr and exit status 2
    (tracebacks are left for bugs). Returns the exit status."""
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
