"""Command line of ``tools/transfer.py``: parse, resolve the recipe, fine-tune.

Users' mistakes end in one line on stderr (``error: ...``) and exit status 2.
"""
import argparse
import logging
import os
import sys


def parse_args(argv=None):
    from .common import add_run_arguments
    p = argparse.ArgumentParser(
        prog="transfer.py",
        description="Fine-tune GluonCV's Faster-RCNN (Table 8) or FCN (Table 9) from one of our "
        "classification backbones; the recipe's 'task' says which.")
    p.add_argument("--recipe", help="recipe under recipes/table8, recipes/table9 or "
                   "recipes/transfer; with --resume it defaults to the run's config.yaml")
    p.add_argument("--backbone", help="the backbone's weights: a run folder or .params file of "
                   "the recipe's backbone_model (ours or GluonCV's); the same as --set backbone=")
    p.add_argument("--data", help="dataset root: the folder holding VOC2007/ (and VOC2012/) "
                   "for detection, ADEChallengeData2016/ for segmentation")
    add_run_arguments(p, "the images per update (global)", "lr=0.002")
    return p.parse_args(argv)


def run(args):
    from ..errors import RunError
    from ..gpu.devices import gpu_contexts
    from ..run.recipe import dumps
    from ..transfer.config import resolve
    from ..transfer.loop import train_transfer
    from .common import launch_of, overrides, require, run_folder_and_recipe

    folder, saved, recipe = run_folder_and_recipe(args)
    if recipe is None:
        raise RunError("--recipe is required (e.g. recipes/table8/distill_mixup.yaml)")
    cfg = resolve(recipe, overrides(args, ("epochs", "batch_size", "backbone")))
    if args.print_config:
        print(dumps(cfg))
        return 0
    data = args.data or saved.get("data")
    require(data=data, out=args.out)
    launch = launch_of(args, dict(argv=sys.argv, data=os.path.abspath(data),
                                  recipe=os.path.abspath(recipe)))
    contexts = gpu_contexts(args.gpus)
    print(dumps(cfg))
    result = train_transfer(cfg, data, args.out, contexts=contexts, launch=launch)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
    print(f"done after epoch {result.epochs}/{cfg.epochs}: {shown} (best {result.best:.4f} "
          f"at epoch {result.best_epoch}); log {folder.log_path}, best {folder.best_params}")
    return 0


def main(argv=None):
    from .common import set_up_process
    args = parse_args(argv)
    set_up_process(deterministic_cpu=not args.gpus)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    from ..errors import run_cli
    return run_cli(run, args)
