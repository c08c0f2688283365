"""Miniature Table 6 ablation on the digits demo set, on CPU: a ladder of recipes over seeds.

    python tools/ablate.py          # the ladder, seeds 0,1,2, 12 epochs: ~20 min on 2 cores
    python tools/ablate.py --quick  # 1 seed, 2 epochs: a smoke test, ~2 min
    python tools/ablate.py recipes/ablation/efficient.yaml recipes/ablation/cosine.yaml \\
        --seeds 0,1 --epochs 8 --out /tmp/abl

Default ladder (recipes/ablation/, each recipe the one above plus one change): efficient
(warmup, zero gamma, no bias decay, step decay), + cosine decay, + label smoothing, + mixup,
+ distillation from a ResNet-34-D teacher trained with mixup, as the paper's teacher for
its mixup students (recipes/ablation/teacher_mixup.yaml, trained first).
Each run is ``recipes/train_imagenet.py`` in a subprocess, its folder
RUNS/<row>_e<epochs>_s<seed>; finished runs are skipped and unfinished ones resumed, so the
command can be re-run after an interruption. Writes OUT/table.md (mean ± std top-1 per row,
with the command, seeds and machine) and OUT/curves.png/.pdf (validation top-1 per epoch,
mean over the seeds); OUT is runs/ablation unless --out says otherwise (`make ablation`
redraws the committed docs/results/ablation).
"""
import argparse
import os
import shlex
import sys
import time

from gluon_tricks.errors import UserError, run_cli
from gluon_tricks.report.figures import plot_val_top1
from gluon_tricks.run.recipe import parse_override

OUT = "runs/ablation"  # docs/results/ablation is redrawn with --out (make ablation)
QUICK = dict(seeds="0", epochs=2, out="runs/ablation/quick")


def seeds_of(text):
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise UserError(f"--seeds {text!r}: expected comma-separated integers, "
                                     "e.g. 0,1,2")
    return seeds


def demo_data(directory):
    """(train.rec, val.rec) of the digits demo set in ``directory``, built if missing."""
    train, val = (os.path.join(directory, f"{split}.rec") for split in ("train", "val"))
    if not (os.path.exists(train) and os.path.exists(val)):
        from gluon_tricks.data.demo import make_demo_data
        print(f"building the digits demo set in {directory}")
        make_demo_data(directory, size=32, seed=0)
    return train, val


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipes", nargs="*", metavar="RECIPE",
                   help="one row per recipe, in order (default: recipes/ablation/ ladder)")
    p.add_argument("--seeds", help="comma-separated seeds (default: 0,1,2; --quick: 0)")
    p.add_argument("--epochs", type=int,
                   help="epochs of every run (default: the recipes' own, 12; --quick: 2)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key in every run (repeatable), e.g. "
                   "--set data.num_workers=1")
    p.add_argument("--quick", action="store_true",
                   help=f"seed {QUICK['seeds']}, {QUICK['epochs']} epochs: checks that "
                   "everything runs (~2 minutes on 2 quiet cores)")
    p.add_argument("--teacher", help="recipe of the distillation teacher of rows that name "
                   "no teacher_recipe (default: the ladder's, recipes/ablation/teacher.yaml)")
    p.add_argument("--data", default="data/demo",
                   help="folder with train.rec/val.rec; the digits demo set is built there "
                   "if missing (default: %(default)s)")
    p.add_argument("--out", help="folder for table.md and curves.png/.pdf (default: "
                   f"{OUT}; --quick: {QUICK['out']})")
    p.add_argument("--runs", default="runs/ablation",
                   help="folder of the run folders (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="retrain runs that already finished")
    p.add_argument("--dry-run", action="store_true",
                   help="print the runs and their state (done/partial/new), train nothing")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.report import ablation
    seeds = seeds_of(args.seeds or (QUICK["seeds"] if args.quick else "0,1,2"))
    epochs = args.epochs or (QUICK["epochs"] if args.quick else None)
    out = args.out or (QUICK["out"] if args.quick else OUT)
    recipes = args.recipes or list(ablation.DEFAULT_RECIPES)
    overrides = [parse_override(text) for text in args.set]

    specs = ablation.plan(recipes, seeds, epochs, args.runs,
                           args.teacher or ablation.DEFAULT_TEACHER, overrides=overrides)
    # --force retrains whatever the folders hold, so their state does not matter
    states = ["force" if args.force else ablation.state(s) for s in specs]
    if args.dry_run:
        for spec, st in zip(specs, states):
            print(f"{st:8s} {spec.row} seed {spec.seed}: {spec.out}")
        return 0
    rec_train, rec_val = demo_data(args.data)
    tic = time.time()
    for i, (spec, st) in enumerate(zip(specs, states), start=1):
        what = f"[{i}/{len(specs)}] {spec.row} seed {spec.seed}"
        if st == "done":
            print(f"{what}: finished before, skipped ({spec.out})")
            continue
        print(f"{what}: {'resuming' if st == 'partial' else 'training'} -> {spec.out}",
              flush=True)
        seconds = ablation.launch_training(spec, rec_train, rec_val, st)
        print(f"{what}: {seconds:.0f} s", flush=True)
    rows = ablation.collect(specs)
    command = "python tools/ablate.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    os.makedirs(out, exist_ok=True)
    table = os.path.join(out, "table.md")
    with open(table, "w") as f:
        f.write(ablation.report(rows, specs, command.strip(), seeds, epochs,
                                f"{rec_train} / {rec_val}", time.time() - tic))
    sys.stdout.write(ablation.markdown(rows))
    print(table)
    for path in plot_val_top1(ablation.curve_runs(rows), os.path.join(out, "curves"),
                              title="Miniature Table 6: val top-1, mean over seeds (cf. Fig. 3b)"):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
