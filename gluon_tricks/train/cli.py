"""Command line of ``recipes/train_imagenet.py``: parse, resolve the recipe, train.

Users' mistakes end in one line on stderr (``error: ...``) and exit status 2; tracebacks are
left for bugs.
"""
import argparse
import logging
import os
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="train_imagenet.py",
        description="Train a network of the paper with the tricks a recipe switches on.")
    p.add_argument("--recipe", help="recipe file (YAML/TOML) under recipes/; with --resume it "
                   "defaults to the run folder's saved config.yaml")
    p.add_argument("--rec-train", help="training RecordIO file (.rec with its .idx)")
    p.add_argument("--rec-val", help="validation RecordIO file (.rec with its .idx)")
    p.add_argument("--init", metavar="WEIGHTS", help="fine-tune: start from these weights (run "
                   "folder or .params, ours or GluonCV's); the same as --set init=WEIGHTS")
    add_run_arguments(p, "the global batch size", "label_smoothing=0.1")
    p.add_argument("--trust-pickled-states", action="store_true",
                   help="--resume a run folder written by an older gluon-tricks, whose optimizer "
                   "state is a pickle: loading it runs any code it holds")
    p.add_argument("--horovod", action="store_true",
                   help="one process per rank under horovodrun (detected when launched by it)")
    return p.parse_args(argv)


def add_run_arguments(p, batch, example):
    """The flags of every command that trains into a run folder: --out, --gpus, --epochs,
    --batch-size (``batch`` says what it counts), --set (``example``), --resume,
    --stop-after, --force, --print-config."""
    p.add_argument("--out", help="run folder for logs and checkpoints")
    p.add_argument("--gpus", default="",
                   help="comma-separated GPU ids, e.g. 0,1,2,3 (default: CPU)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--batch-size", type=int, help=f"override {batch}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override any recipe key (repeatable), e.g. --set {example}")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--stop-after", type=int, metavar="N",
                   help="train at most N epochs now, then exit (continue with --resume)")
    p.add_argument("--force", action="store_true",
                   help="replace a run that --out already holds (it is kept in OUT/replaced/ "
                   "until the new run's first checkpoint)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration and exit")


def overrides(args, shorthands=("epochs", "batch_size", "init")):
    """The (key, value) pairs of ``--set``, then those of the shorthand flags given (each
    the flag's attribute of ``args`` and its recipe key)."""
    from .config import parse_override
    pairs = [parse_override(text) for text in args.set]
    return pairs + [(key, getattr(args, key)) for key in shorthands
                    if getattr(args, key) is not None]


def run_folder_and_recipe(args):
    """(RunFolder of --out or None, its command.json when resuming else {}, the recipe:
    --recipe, or with --resume the run's own config.yaml)."""
    from ..runfolder import RunFolder
    folder = RunFolder(args.out) if args.out else None
    saved = folder.read_command() if (args.resume and folder) else {}
    recipe = args.recipe
    if recipe is None and args.resume and folder:
        recipe = folder.config_path
    return folder, saved, recipe


def run(args):
    from .config import dumps, resolve
    from .distributed import detect, parse_gpus
    from ..errors import RunError
    from .loop import train

    folder, saved, recipe = run_folder_and_recipe(args)
    cfg = resolve(recipe, overrides(args))
    if args.print_config:
        print(dumps(cfg))
        return 0
    rec_train = args.rec_train or saved.get("rec_train")
    rec_val = args.rec_val or saved.get("rec_val")
    for flag, value in (("--rec-train", rec_train), ("--rec-val", rec_val), ("--out", args.out)):
        if not value:
            raise RunError(f"{flag} is required")
    gpus = parse_gpus(args.gpus)
    if args.stop_after is not None and args.stop_after <= 0:
        raise RunError(f"--stop-after {args.stop_after}: expected a positive number of epochs")
    dist = detect(args.horovod)
    contexts = dist.contexts(gpus)
    if dist.is_root:
        print(dumps(cfg))
    command = dict(argv=sys.argv, rec_train=os.path.abspath(rec_train),
                   rec_val=os.path.abspath(rec_val),
                   recipe=os.path.abspath(recipe) if recipe else recipe)
    result = train(cfg, rec_train, rec_val, args.out, contexts=contexts, resume=args.resume,
                   force=args.force, dist=dist, stop_after=args.stop_after, command=command,
                   trust_pickled_states=args.trust_pickled_states)
    if dist.is_root:
        print(f"done after epoch {result.epochs}/{cfg.epochs}: val top-1 {result.val_top1:.4f} "
              f"top-5 {result.val_top5:.4f} (best top-1 {result.best_top1:.4f}); log "
              f"{folder.log_path}, checkpoints {folder.checkpoint_dir}, best "
              f"{folder.best_params}")
    return 0


def main(argv=None):
    # MXNet sizes its OpenMP pool at import: one thread on 2 vCPUs unless told (docs/notes.md §4);
    # ranks sharing a machine share its cores.
    local_ranks = int(os.environ.get("HOROVOD_LOCAL_SIZE", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // local_ranks)))
    args = parse_args(argv)
    if not args.gpus and not args.horovod and "HOROVOD_RANK" not in os.environ:
        # On CPU, MXNet's threaded engine made two identical runs differ (by ~3e-3 in the
        # weights after two epochs of the demo) and was no faster; the naive engine runs
        # each operation as it is issued, and identical runs and resumed runs are bit-equal.
        os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    from ..errors import run_cli
    try:
        return run_cli(run, args)
    except Exception as e:
        from .distributed import lost_a_rank
        if not lost_a_rank(e):
            raise
        print(f"error: rank {os.environ.get('HOROVOD_RANK', '?')} stops: another rank of the "
              "Horovod job stopped first (the launcher names it)", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # MXNet's exit hook would only repeat Horovod's shutdown error
