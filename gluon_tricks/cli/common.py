"""What the command lines share: the flags of every command that trains into a run folder
(:func:`add_run_arguments`, read back as recipe overrides and a
:class:`~gluon_tricks.run.lifecycle.Launch`), the process set-up before MXNet is imported
(:func:`set_up_process`), and the flags that say which weights a tool uses
(:func:`add_weights_arguments`). Importing this module imports no MXNet, so that ``--help``
answers at once."""
import os

from ..cpus import cpus_per_rank


def set_up_process(deterministic_cpu, ranks_per_host=1):
    """Before MXNet is imported: its OpenMP pool (sized at import) gets the CPUs this process
    may use, shared among the ranks that run on it (MXNet runs one thread on 2 vCPUs unless told,
    docs/notes.md §4). On CPU (``deterministic_cpu``) MXNet's naive engine, under which
    identical runs and resumed runs are bit-equal (the threaded engine is not, even on one
    device), with OpenMP's idle threads sleeping instead of spinning: under the naive
    engine the spinning thread takes the core from Python and the decoding thread
    (docs/notes.md §4). Variables the user set win."""
    os.environ.setdefault("OMP_NUM_THREADS", str(cpus_per_rank(ranks_per_host)))
    if deterministic_cpu:
        os.environ.setdefault("MXNET_ENGINE_TYPE", "NaiveEngine")
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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


def overrides(args, shorthands):
    """The (key, value) pairs of ``--set``, then those of the shorthand flags given (each
    the flag's attribute of ``args`` and its recipe key)."""
    from ..run.recipe import parse_override
    pairs = [parse_override(text) for text in args.set]
    return pairs + [(key, getattr(args, key)) for key in shorthands
                    if getattr(args, key) is not None]


def run_folder_and_recipe(args):
    """(RunFolder of --out or None, its command.json when resuming else {}, the recipe:
    --recipe, or with --resume the run's own config.yaml)."""
    from ..run.folder import RunFolder
    folder = RunFolder(args.out) if args.out else None
    saved = folder.read_command() if (args.resume and folder) else {}
    recipe = args.recipe
    if recipe is None and args.resume and folder:
        recipe = folder.config_path
    return folder, saved, recipe


def require(**flags):
    """RunError (one line) naming the first flag (``rec_train=`` is --rec-train) without a
    value."""
    from ..errors import RunError
    for name, value in flags.items():
        if not value:
            raise RunError(f"--{name.replace('_', '-')} is required")


def launch_of(args, command):
    """The :class:`~gluon_tricks.run.lifecycle.Launch` of the run flags; RunError (one line)
    for a --stop-after that is not positive."""
    from ..errors import RunError
    from ..run.lifecycle import Launch
    if args.stop_after is not None and args.stop_after <= 0:
        raise RunError(f"--stop-after {args.stop_after}: expected a positive number of epochs")
    return Launch(resume=args.resume, force=args.force, stop_after=args.stop_after,
                  command=command)


def add_weights_arguments(parser, resize=True):
    """The command-line flags that say which weights a tool uses (WEIGHTS, --epoch, --model,
    --classes, --input-size and, for tools that read images, --resize); read them back with
    :func:`checkpoint_from_args`."""
    parser.add_argument("weights", metavar="WEIGHTS", help="run folder or .params file")
    parser.add_argument("--epoch", type=int, help="a run folder's checkpoint of this epoch "
                        "(default: its best.params)")
    parser.add_argument("--model", help="network (default: the run's; required for a "
                        ".params file)")
    parser.add_argument("--classes", type=int, help="number of classes (default: from the "
                        "classifier weight)")
    parser.add_argument("--input-size", type=int, help="centre crop side (default: the run's, "
                        "else the network's)")
    if resize:
        parser.add_argument("--resize", type=int, help="short side before the crop (default: "
                            "input size / 0.875, e.g. 256 for 224)")


def add_batch_arguments(parser, batch_size, json_help):
    """--batch-size (images per forward pass, default ``batch_size``), --gpus and --json
    (``json_help`` says what is printed), for the tools that run a network on images."""
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help="images per forward pass")
    parser.add_argument("--gpus", default="", help="comma-separated GPU ids (default: CPU)")
    parser.add_argument("--json", action="store_true", help=json_help)


def checkpoint_from_args(args):
    """:func:`open_checkpoint` for the flags of :func:`add_weights_arguments`; a flag that
    must be positive and is not is a one-line WeightsError."""
    from ..models.weights import WeightsError
    resize = getattr(args, "resize", None)
    for flag, value in (("--epoch", args.epoch), ("--classes", args.classes),
                        ("--input-size", args.input_size), ("--resize", resize)):
        if value is not None and value <= 0:
            raise WeightsError(f"{flag} {value}: expected a positive number")
    from ..infer.checkpoint import CheckpointOverrides, open_checkpoint
    return open_checkpoint(args.weights, epoch=args.epoch, overrides=CheckpointOverrides(
        model=args.model, classes=args.classes, input_px=args.input_size, resize=resize))
