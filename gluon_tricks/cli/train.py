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
    p.add_argument("--ranks", type=int, metavar="N",
                   help="with --print-config: the plan of a Horovod job of N ranks (horovodrun "
                   "-np N), one device each, as such a job runs (default: one process on "
                   "--gpus)")
    return p.parse_args(argv)


def run(args):
    from ..run.parallel import detect
    from ..run.recipe import dumps
    from ..train.config import batch_plan
    from ..gpu.devices import parse_gpus
    from .common import launch_of, require, run_folder_and_recipe

    ranks = checked_ranks(args)
    folder, saved, recipe = run_folder_and_recipe(args)
    cfg, changed, notes = configuration(recipe, args)
    if args.print_config:
        print(dumps(cfg))  # stdout stays the recipe; the plan on --gpus (no device touched)
        # a Horovod rank drives one device (its host's gpus[local_rank]), a process all
        devices = 1 if args.ranks else max(len(parse_gpus(args.gpus)), 1)
        print(f"# {batch_plan(cfg, devices, ranks).line()}", file=sys.stderr)
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
        # a few lines, not the whole configuration: it is written to the run folder
        print(f"recipe {recipe or '(defaults)'}; the whole configuration: "
              f"{folder.config_path} (or --print-config)")
        for line in notes + [f"changed from the recipe: {', '.join(changed)}"] * bool(changed):
            print(line)
    from ..train.loop import train
    train(cfg, rec_train, rec_val, args.out, contexts=contexts, dist=dist, launch=launch)
    return 0


def checked_ranks(args):
    """The Horovod size --ranks gives --print-config (default 1: one process); RunError
    (one line) for --ranks without --print-config (a job's size is horovodrun's -np) or
    below 1."""
    from ..errors import RunError
    if args.ranks is None:
        return 1
    if not args.print_config:
        raise RunError(f"--ranks {args.ranks}: only with --print-config (a Horovod job's "
                       "size is horovodrun's -np)")
    if args.ranks < 1:
        raise RunError(f"--ranks {args.ranks}: expected a positive number of Horovod ranks")
    return args.ranks


def configuration(recipe, args):
    """(the TrainConfig of ``recipe`` and the flags, the changes from the recipe as "key old
    -> new" strings, notes). ``--epochs`` shorter than the recipe's warmup (or its epochs
    without mixup) shortens those too, and a note says so, unless --set chose them; a
    setting a shorthand flag (--epochs, --batch-size) made wrong is named by that flag."""
    from ..run.recipe import ConfigError, config_diff, parse_override
    from ..train.config import resolve
    from .common import overrides
    pairs = overrides(args, ("epochs", "batch_size", "init"))
    chosen = {key for key, _ in (parse_override(text) for text in args.set)}
    try:
        base = resolve(recipe, [(k, v) for k, v in pairs if k != "epochs"])
    except ConfigError:
        base = None  # the full resolve below says what is wrong
    notes = []
    if base is not None and args.epochs is not None and "epochs" not in chosen:
        fits = dict(warmup_epochs=min(base.warmup_epochs, max(args.epochs - 1, 0)),
                    mixup_off_epochs=min(base.mixup_off_epochs, args.epochs))
        for key, value in fits.items():
            if key not in chosen and value != getattr(base, key):
                notes.append(f"note: --epochs {args.epochs}: {key} {getattr(base, key)} -> "
                             f"{value} to fit (choose it with --set {key}=N)")
                pairs.insert(0, (key, value))  # before the flags, which name an error
    try:
        cfg = resolve(recipe, pairs)
    except ConfigError as e:
        raise ConfigError(flag_named(str(e), args, chosen)) from None
    try:
        changed = [f"{k} {old} -> {new}" for k, (old, new) in
                   config_diff(resolve(recipe).to_dict(), cfg.to_dict()).items()]
    except ConfigError:  # a recipe that needs its flags (a teacher, --init) to resolve
        changed = [f"{k} -> {v}" for k, v in pairs]
    return cfg, changed, notes


def flag_named(message, args, chosen):
    """``message`` of a ConfigError with ``--set epochs:`` (or batch_size) replaced by the
    flag the user typed (``--epochs 2:``) when it came from that flag."""
    for key in ("epochs", "batch_size"):
        value = getattr(args, key)
        prefix = f"--set {key}: "
        if value is not None and key not in chosen and message.startswith(prefix):
            return f"--{key.replace('_', '-')} {value}: {message[len(prefix):]}"
    return message


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
    except KeyboardInterrupt as e:  # Ctrl-C: one line (the run folder's, if one was open)
        print(f"error: {e or 'interrupted'}", file=sys.stderr)
        return 130
    except Exception as e:
        from ..run.parallel import lost_a_rank
        if not lost_a_rank(e):
            raise
        print(f"error: rank {os.environ.get('HOROVOD_RANK', '?')} stops: another rank of the "
              "Horovod job stopped first (the launcher names it)", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # MXNet's exit hook would only repeat Horovod's shutdown error
