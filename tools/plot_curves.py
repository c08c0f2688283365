"""Paper Figure 3(b): validation top-1 accuracy per epoch of one or more runs.

    python tools/plot_curves.py runs/r50d_step runs/r50d_cosine --out runs/figures/fig3b

Reads each run folder's log.jsonl (epoch records); each curve is labelled with its recipe's
description, else its paper key, else the folder name.
"""
import argparse
import os
import sys

from gluon_tricks.errors import run_cli
from gluon_tricks.report.figures import DEFAULT_OUT, plot_val_top1


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run folders (train_imagenet.py --out); of several, paths that hold "
                   "no run (runs/figures, an export) are skipped")
    p.add_argument("--out", default=os.path.join(DEFAULT_OUT, "fig3b_val_top1"),
                   help="output prefix: writes PREFIX.png and PREFIX.pdf (default: %(default)s)")
    p.add_argument("--title", help="figure title")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.report.runs import load_run, runs_among
    paths, notes = runs_among(args.runs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    runs = [load_run(path) for path in paths]
    kwargs = {"title": args.title} if args.title else {}
    for path in plot_val_top1(runs, args.out, **kwargs):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
