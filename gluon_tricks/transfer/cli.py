"""Command line of ``tools/transfer.py``: parse, resolve the recipe, fine-tune.

Users' mistakes end in one line on stderr (``error: ...``) and exit status 2.
"""
import argparse
import logging
import os
import sys


def parse_args(argv=None):
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
    p.add_argument("--out", help="run folder for logs and checkpoints")
    p.add_argument("--gpus", default="", help="comma-separated GPU ids, e.g. 0,1,2,3 (default: CPU)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--batch-size", type=int, help="override the images per update (global)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any recipe key (repeatable), e.g. --set lr=0.002")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--stop-after", type=int, metavar="N",
                   help="train at most N epochs now, then exit (continue with --resume)")
    p.add_argument("--force", action="store_true",
                   help="replace a run that --out already holds (kept in OUT/replaced/ until "
                   "the new run's first checkpoint)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration and exit")
    return p.parse_args(argv)


def _overrides(args):
    from ..train.config import parse_override
    pairs = [parse_override(text) for text in args.set]
    for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size),
                       ("backbone", args.backbone)):
        if value is not None:
            pairs.append((key, value))
    return pairs


def run(args):
    import yaml

    from ..errors import RunError
    from ..runfolder import RunFolder
    from ..train.distributed import gpu_contexts
    from .config import resolve
    from .loop import train_transfer

    folder = RunFolder(args.out) if args.out else None
    saved = folder.read_command() if (args.resume and folder) else {}
    recipe = args.recipe
    if recipe is None and args.resume and folder:
        recipe = folder.config_path
    if recipe is None:
        raise RunError("--recipe is required (e.g. recipes/table8/distill_mixup.yaml)")
    cfg = resolve(recipe, _overrides(args))
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
    if args.print_config:
        print(text)
        return 0
    data = args.data or saved.get("data")
    for flag, value in (("--data", data), ("--out", args.out)):
        if not value:
            raise RunError(f"{flag} is required")
    if args.stop_after is not None and args.stop_after <= 0:
        raise RunError(f"--stop-after {args.stop_after}: expected a positive number of epochs")
    contexts = gpu_contexts(args.gpus)
    print(text)
    command = dict(argv=sys.argv, data=os.path.abspath(data),
                   recipe=os.path.abspath(recipe))
    result = train_transfer(cfg, data, args.out, contexts=contexts, resume=args.resume,
                            force=args.force, stop_after=args.stop_after, command=command)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
    print(f"done after epoch {result.epochs}/{cfg.epochs}: {shown} (best {result.best:.4f} "
          f"at epoch {result.best_epoch}); log {folder.log_path}, best {folder.best_params}")
    return 0


def main(argv=None):
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))  # docs/notes.md §4
    args = parse_args(argv)
    if not args.gpus:
        # identical CPU runs, and resumed ones, are bit-equal under the naive engine
        os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    from ..errors import run_cli
    return run_cli(run, args)
