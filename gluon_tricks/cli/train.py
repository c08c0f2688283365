"""Command line of ``recipes/train_imagenet.py``: parse, resolve the recipe, train.

Users' mistakes end in one line on stderr (``error: ...``) and exit status 2; tracebacks are
left for bugs.
"""
import argparse
import logging
import os
import sys


def parse_args(argv=None):
    from .common import add_run_arguments
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
    p.add_argument("--horovod", action="store_true",
                   help="one process per rank under horovodrun (detected when launched by it)")
    return p.parse_args(argv)


def run(args):
    from ..run.parallel import detect
    from ..run.recipe import dumps
    from ..train.config import batch_plan, resolve
    from ..train.loop import train
    from ..gpu.devices import parse_gpus
    from .common import launch_of, overrides, require, run_folder_and_recipe

    folder, saved, recipe = run_folder_and_recipe(args)
    cfg = resolve(recipe, overrides(args, ("epochs", "batch_size", "init")))
    if args.print_config:
        print(dumps(cfg))  # stdout stays the recipe; the plan on --gpus (no device touched)
        print(f"# {batch_plan(cfg, max(len(parse_gpus(args.gpus)), 1)).line()}",
              file=sys.stderr)
        return 0
    rec_train = args.rec_train or saved.get("rec_train")
    rec_val = args.rec_val or saved.get("rec_val")
    require(rec_train=rec_train, rec_val=rec_val, out=args.out)
    gpus = parse_gpus(args.gpus)
    command = dict(argv=sys.argv, rec_train=os.path.abspath(rec_train),
                   rec_val=os.path.abspath(rec_val),
                   recipe=os.path.abspath(recipe) if recipe else recipe)
    launch = launch_of(args, command)
    dist = detect(args.horovod)
    contexts = dist.contexts(gpus, dali=cfg.data.backend == "dali")
    if dist.is_root:
        print(dumps(cfg))
    result = train(cfg, rec_train, rec_val, args.out, contexts=contexts, dist=dist,
                   launch=launch)
    if dist.is_root:
        print(f"done after epoch {result.epochs}/{cfg.epochs}: val top-1 {result.val_top1:.4f} "
              f"top-5 {result.val_top5:.4f} (best top-1 {result.best_top1:.4f}); log "
              f"{folder.log_path}, checkpoints {folder.checkpoint_dir}, best "
              f"{folder.best_params}")
    return 0


def main(argv=None):
    from .common import set_up_process
    args = parse_args(argv)
    horovod = args.horovod or "HOROVOD_RANK" in os.environ
    set_up_process(deterministic_cpu=not args.gpus and not horovod,
                   ranks_per_host=int(os.environ.get("HOROVOD_LOCAL_SIZE", "1")))
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    from ..errors import run_cli
    try:
        return run_cli(run, args)
    except Exception as e:
        from ..run.parallel import lost_a_rank
        if not lost_a_rank(e):
            raise
        print(f"error: rank {os.environ.get('HOROVOD_RANK', '?')} stops: another rank of the "
              "Horovod job stopped first (the launcher names it)", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # MXNet's exit hook would only repeat Horovod's shutdown error
