"""Paper Figure 4: histograms of the gap between the largest logit and the rest.

    python tools/logit_gap.py runs/onehot runs/smoothed --label one-hot --label "label smoothing" \\
        --rec-val data/demo/val.rec --out runs/figures/fig4 --json gaps.json
    python tools/logit_gap.py run/checkpoints/epoch-0030.params --model resnet18_v1d \\
        --classes 10 --input-size 32 --rec-val data/demo/val.rec

Each CHECKPOINT is a run folder (its best.params; model, classes, input size, validation
pipeline and label smoothing from its config.yaml) or a .params file (with --model; classes
from its classifier weight unless --classes). Over every image of --rec-val, in inference
mode, the gap of an image is max_k z_k - mean_{k != argmax} z_k of its logits z (the paper's
"gap between the maximum prediction and the average of the rest"). Prints a Markdown table
(mean, median, std of the gaps, and the optimum log((K-1)(1-eps)/eps) of a run trained with
label smoothing eps, 9.1 for K = 1000, eps = 0.1) and writes PREFIX.png/.pdf: (a) the
optimum against eps, (b) the histograms overlaid, each run's optimum dashed.
"""
import argparse
import json
import os
import sys

from gluon_tricks.errors import run_cli
from gluon_tricks.report.figures import DEFAULT_OUT


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="run folders (train_imagenet.py --out) or .params files")
    p.add_argument("--rec-val", required=True, help="validation RecordIO file (.rec + .idx)")
    p.add_argument("--label", action="append", default=[],
                   help="name of each checkpoint in order (repeatable; default: folder/file name)")
    p.add_argument("--model", help="network of .params files (run folders: their config's)")
    p.add_argument("--classes", type=int, help="number of classes (default: from the weights)")
    p.add_argument("--input-size", type=int, help="input side in pixels (default: the "
                   "run's, else the network's)")
    p.add_argument("--eps", type=float, help="label smoothing of .params files, for the "
                   "optimum (run folders: their config's)")
    p.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    p.add_argument("--out", default=os.path.join(DEFAULT_OUT, "fig4_logit_gap"),
                   help="output prefix: writes PREFIX.png and PREFIX.pdf (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", help="also write the statistics as JSON here")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if len(args.label) > len(args.checkpoints):
        p.error(f"{len(args.label)} --label for {len(args.checkpoints)} checkpoints")
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.infer.checkpoint import CheckpointOverrides, open_checkpoint
    from gluon_tricks.report.logit_gap import (checkpoint_optimum, gap_stats, logit_gaps,
                                               plot_gaps, table, val_logits)
    labels = args.label + [None] * (len(args.checkpoints) - len(args.label))
    given = CheckpointOverrides(model=args.model, classes=args.classes,
                                input_px=args.input_size, eps=args.eps)
    ckpts = [open_checkpoint(path, label, overrides=given)
             for path, label in zip(args.checkpoints, labels)]
    series, rows = [], []
    for ckpt in ckpts:
        logits, _ = val_logits(ckpt, args.rec_val, args.batch_size)
        gaps = logit_gaps(logits)
        series.append((ckpt, gaps))
        rows.append(dict(label=ckpt.label, checkpoint=ckpt.params, model=ckpt.model,
                         classes=ckpt.classes, eps=ckpt.eps, images=len(gaps),
                         **gap_stats(gaps), optimum=checkpoint_optimum(ckpt)))
    sys.stdout.write(table(rows))
    for path in plot_gaps(series, args.out):
        print(path)
    if args.json:
        directory = os.path.dirname(args.json)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(dict(rec_val=args.rec_val, definition="max_k z_k - mean_{k != argmax} z_k",
                           runs=rows), f, indent=1)
        print(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
