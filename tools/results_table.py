"""Markdown table of runs beside the paper's numbers.

    python tools/results_table.py runs/* --out docs/results/results.md

One row per run folder: run, the recipe file it started from, the keys in which it
departs from that recipe ("changed": --set, --epochs, --batch-size; "?" if the recipe is
unknown), paper key, model, epochs (done/planned), validation top-1 and top-5 in percent
at the last epoch and at the best epoch (by top-1), mean training images/second, and,
where the recipe's ``paper:`` key is a result of the paper, the paper's top-1/top-5 and our
final minus the paper's (percentage points). Beside the model, which conventions produced
the row (``paper`` or ``gluoncv``, and any key the run set otherwise, e.g. ``paper;
initializer=msra``) and, for distillation rows, which loss (the paper's Eq. 6 or GluonCV's
hard-weighted mix), and the batch plan (images per device, devices, accumulation, BatchNorm's
batch; as the run logged it at each start and resume, "?" for a run from before that) beside
the published run's: the differences that change the number are shown where it is.
Transfer runs (tools/transfer.py, Tables 8 and 9) get a table of their own after it: the
backbone's top-1 as the run recorded it when it started (the validation top-1 its backbone
run logged for the weights used; "-" for a .params file without its run's record), mAP, or
pixel accuracy and mIoU, in percent at the last epoch, beside the paper's (its Top-1 column
too) where recorded. Of several paths (a glob such as ``runs/*``), those that hold no run
(``runs/figures`` of the plotting tools, an exported file) are skipped with a note on
stderr.
"""
import argparse
import os
import sys

from gluon_tricks.errors import run_cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run folders (train_imagenet.py or transfer.py --out); of several, "
                   "paths that hold no run (runs/figures, an export) are skipped")
    p.add_argument("--out", metavar="FILE", help="write the table here (default: stdout)")
    args = p.parse_args(argv)
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.report.runs import load_run, runs_among
    from gluon_tricks.report.tables import markdown, row_of, transfer_markdown
    paths, notes = runs_among(args.runs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    runs = [load_run(path) for path in paths]
    classifiers = [run for run in runs if not run.task]
    transfers = [run for run in runs if run.task]
    table = markdown([row_of(run) for run in classifiers], [run.config for run in classifiers])
    text = "\n".join(([table] if classifiers else [])
                     + ([transfer_markdown(transfers)] if transfers else []))
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
