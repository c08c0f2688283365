"""The one error convention of the report command lines (``tools/plot_*.py``,
``tools/results_table.py``, ``tools/export_gluoncv.py``)."""
import sys

from ..errors import UserError


def run_cli(main, argv=None):
    """Call ``main(argv)``; a UserError becomes ``error: ...`` on stderr and exit status 2
    (tracebacks are left for bugs). Returns the exit status."""
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
