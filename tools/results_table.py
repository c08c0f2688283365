"""Markdown table of runs beside the paper's numbers.

    python tools/results_table.py runs/* --out docs/results/results.md

One row per run folder: run, the recipe file it started from, the keys in which it
departs from that recipe ("changed": --set, --epochs, --batch-size; "?" if the recipe is
unknown), paper key, model, epochs (done/planned), validation top-1 and top-5 in percent
at the last epoch and at the best epoch (by top-1), mean training images/second, and,
where the recipe's ``paper:`` key is a result of the paper, the paper's top-1/top-5 and our
final minus the paper's (percentage points).
"""
import argparse
import os
import sys

from gluon_tricks.errors import run_cli
from gluon_tricks.report.runs import load_run
from gluon_tricks.report.tables import markdown, row_of


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run folders (train_imagenet.py --out)")
    p.add_argument("--out", metavar="FILE", help="write the table here (default: stdout)")
    args = p.parse_args(argv)
    text = markdown([row_of(load_run(path)) for path in args.runs])
    if args.out:
        directory = os.path.dirname(args.out)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print(args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
