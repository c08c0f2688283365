"""Paper Figure 3(b): validation top-1 accuracy per epoch of one or more runs, and a run
against the authors' published run of the same row.

    python tools/plot_curves.py runs/r50d_step runs/r50d_cosine --out runs/figures/fig3b
    python tools/plot_curves.py runs/r50d_ls --published            # its recipe's published run
    python tools/plot_curves.py runs/demo --published resnet50_v1d  # any published run

Reads each run folder's log.jsonl (epoch records); each curve is labelled with its recipe's
description, else its paper key, else the folder name, and in brackets the conventions it
trained under (paper or gluoncv, and any key set otherwise) and, for distillation, its loss
(Eq. 6 or GluonCV's hard-weighted mix); the tool prints the same per run. With --published the figure also
draws the published curves (dashed), and for each run the tool prints
its batch plan beside the published run's (images per device, devices, accumulation,
BatchNorm's batch; whether the global and BN batch are the authors'),
``epoch | ours | published | gap`` and one line saying whether the run is on track (within
the spread of the authors' own sibling runs below the published curve;
gluon_tricks/report/tracking.py). Published runs: gluon_tricks/published_runs.json; one
whose validation lines are flagged as not a measurement (resnet152_v1d's placeholder) is
named and skipped, never drawn or compared as the authors' curve.
"""
import argparse
import os
import sys

from gluon_tricks.errors import run_cli


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="run folders (train_imagenet.py --out); of several, paths that hold "
                   "no run (runs/figures, an export) are skipped")
    p.add_argument("--published", nargs="*", metavar="NAME",
                   help="compare with the authors' published runs: NAME (e.g. resnet50_v1d), "
                   "or with no NAME each run's recipe's own (its published_run key)")
    p.add_argument("--out", default=os.path.join("runs", "figures", "fig3b_val_top1"),
                   help="output prefix: writes PREFIX.png and PREFIX.pdf (default: %(default)s)")
    p.add_argument("--title", help="figure title")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.errors import UserError
    from gluon_tricks import published
    from gluon_tricks.report import tracking
    from gluon_tricks.report.figures import plot_val_top1, provenance_label
    from gluon_tricks.report.runs import load_run, runs_among
    paths, notes = runs_among(args.runs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    runs = [load_run(path) for path in paths]
    for run in runs:
        print(f"{run.name}: {provenance_label(run)}")
    references = []
    if args.published is not None:
        for run in runs:
            names = args.published or [run.config.get("published_run")]
            if not names[0]:
                raise UserError(f"{run.path}: its recipe names no published run; pass one, "
                                "e.g. --published resnet50_v1d")
            for name in names:
                reference = published.run(name)
                if not reference.curve_measured:
                    print(f"{run.name}: the published {name} is not compared or drawn: its "
                          f"validation is flagged ({reference.validity})")
                    continue
                rows = tracking.compare(run, reference)
                print(f"{run.name} against the published {name} "
                      f"({reference.namespace.get('num_epochs')} epochs):")
                print(tracking.batch_line(run, reference))
                print(tracking.table(rows))
                print(tracking.verdict(rows, reference.namespace.get("num_epochs", 120)))
                if reference not in references:
                    references.append(reference)
    kwargs = {"title": args.title} if args.title else {}
    for path in plot_val_top1(runs, args.out, published=references, **kwargs):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
