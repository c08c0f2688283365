"""A set of trained weights and what is needed to use them: the one place where the tools
that score, plot, predict with or export a network (validate, predict, logit_gap,
export_onnx) turn "a run folder or a .params file" into a network.

A run folder gives its ``best.params`` (or ``checkpoints/epoch-NNNN.params``), and its
config.yaml the model, classes, label smoothing and validation pipeline (input size,
resize, normalisation). A bare ``.params`` file (ours or GluonCV's, FP16 or FP32, in our
layout or GluonCV's ResNet V1 layout) needs the model named; its classes are read from the
classifier weight. Arguments given explicitly override what the run says.
"""
import os
from dataclasses import dataclass

import mxnet as mx

from . import data as gt_data
from .errors import UserError, one_line
from .models import MODEL_NAMES, get_model, input_size
from .runfolder import RunFolder, params_of
from .train.config import from_saved


class WeightsError(UserError):
    """Weights that cannot be opened or loaded; the message names the file or flag."""


@dataclass
class Checkpoint:
    """A network to use: its .params file and what is needed to rebuild and read it.

    label : a name for tables and legends. model, classes : as get_model takes them.
    eps, mode : the label smoothing it was trained with (0 if unknown). data : the
    DataConfig of its validation pipeline (input size, resize, normalisation).
    """
    label: str
    params: str
    model: str
    classes: int
    eps: float
    mode: str
    data: gt_data.DataConfig


def read_params(path):
    """{name: NDArray} of a .params file, with a one-line error for anything else."""
    try:
        params = mx.nd.load(path)
    except Exception as e:  # MXNetError for files that are not NDArray lists
        raise WeightsError(f"{path}: not an MXNet .params file ({one_line(e, 120)})") from None
    if not isinstance(params, dict) or not params:
        raise WeightsError(f"{path}: holds no named parameters (not a saved network)")
    return params


CLASSIFIER_WEIGHTS = ("fc.weight", "output.weight")  # ours/GluonCV v1b-d, GluonCV v1/zoo
CLASSIFIER_PARAMS = CLASSIFIER_WEIGHTS + tuple(w[:-len("weight")] + "bias"
                                               for w in CLASSIFIER_WEIGHTS)


def infer_classes(params, path="parameters"):
    """Number of classes: rows of the classifier weight (``fc.weight`` or ``output.weight``)."""
    for key in CLASSIFIER_WEIGHTS:
        if key in params:
            return int(params[key].shape[0])
    raise WeightsError(f"{path}: no classifier weight (fc.weight or output.weight) to read the "
                       "number of classes from; pass --classes")


def open_checkpoint(path, label=None, model=None, classes=None, input_px=None, eps=None,
                    resize=None, epoch=None):
    """Describe the network ``path`` holds: a run folder (its best.params, or the checkpoint
    of ``epoch``; model, classes, validation pipeline and label smoothing from its
    config.yaml, arguments given here override them) or a .params file (``model``
    required; classes read from the classifier weight if not given; the network's own
    input size and resize unless given; eps 0 unless given). Raises WeightsError or
    RunFolderError (one line)."""
    if os.path.isdir(path):
        folder = RunFolder(path)
        cfg = from_saved(folder.read_config(), folder.config_path)
        model, classes = model or cfg.model, classes or cfg.classes
        eps = cfg.label_smoothing if eps is None else eps
        mode, data, default_label = cfg.label_smoothing_mode, cfg.data, folder.name
        if epoch is not None:
            params = folder.checkpoint(epoch, "params")
            if not os.path.isfile(params):
                kept = ", ".join(map(str, folder.checkpoint_epochs())) or "none"
                raise WeightsError(f"{path}: no checkpoint of epoch {epoch} (kept: {kept})")
        else:
            params = params_of(path)
    else:
        if epoch is not None:
            raise WeightsError(f"--epoch {epoch}: only for a run folder, not {path}")
        if model is None and os.path.isfile(path):
            raise WeightsError(f"{path}: a bare .params file needs --model (or pass its run "
                               "folder)")
        mode, data = "paper", gt_data.DataConfig()
        default_label = os.path.splitext(os.path.basename(path))[0]
        params = params_of(path)
    if model not in MODEL_NAMES:
        raise WeightsError(f"{path}: model {model!r} is not one of {', '.join(MODEL_NAMES)}")
    if input_px or data.input_size is None:
        data = data.replace(input_size=input_px or input_size(model), val_resize=None)
    if resize:
        data = data.replace(val_resize=resize)
    return Checkpoint(label=label or default_label, params=params, model=model,
                      classes=int(classes or infer_classes(read_params(params), params)),
                      eps=float(eps or 0.0), mode=mode, data=data)


def load_network(model, classes, path, ctx=None):
    """``model`` with ``classes`` classes and the weights of the .params file ``path``, in
    FP32 (FP16 files are cast), on the context(s) ``ctx`` (default: CPU). Strict: every
    parameter, right shapes; WeightsError (one line) otherwise."""
    net = get_model(model, classes=classes)
    try:
        net.load_parameters(path, ctx=ctx or mx.cpu(), cast_dtype=True,
                            dtype_source="current")
    except Exception as e:  # MXNet reports bad files and missing/mis-shaped parameters variously
        raise WeightsError(f"{path}: cannot load it as {model} with {classes} classes "
                           f"({one_line(e, 160)})") from None
    return net


def load_net(ckpt, ctx=None):
    """The network of the :class:`Checkpoint` ``ckpt`` (:func:`load_network`)."""
    return load_network(ckpt.model, ckpt.classes, ckpt.params, ctx)


@dataclass
class InitReport:
    """What :func:`init_from` did: parameters loaded, parameters left at their fresh
    initialisation (with why), and file entries no parameter took."""
    loaded: list
    fresh: dict  # name -> "not in the file" or "shape (a, b) in the file, (c, d) here"
    unused: list

    def lines(self, path):
        """Sentences for the training log."""
        out = [f"--init {path}: loaded {len(self.loaded)} of "
               f"{len(self.loaded) + len(self.fresh)} parameters"]
        if self.fresh:
            shown = "; ".join(f"{k} ({why})" for k, why in list(self.fresh.items())[:6])
            more = f"; and {len(self.fresh) - 6} more" if len(self.fresh) > 6 else ""
            out.append(f"--init: freshly initialised: {shown}{more}")
        if self.unused:
            out.append(f"--init: {len(self.unused)} entries of the file not used: "
                       f"{', '.join(self.unused[:6])}{' ...' if len(self.unused) > 6 else ''}")
        return out


def init_from(net, path, model):
    """Fine-tuning start: copy into the initialised ``net`` (a ``model``) every parameter of
    the .params file ``path`` (ours or GluonCV's; FP16 or FP32; GluonCV's ResNet V1 layout
    too) whose name and shape match; the rest keep their fresh initialisation (a classifier
    for another number of classes). Returns an :class:`InitReport`. WeightsError if fewer
    than half of the parameters outside the classifier would load (another architecture:
    a ResNet-18-D file shares only its stem with a ResNet-50-D)."""
    from .models import RESNETS
    from .models.convert import is_gluoncv_v1_layout, v1_name_to_ours
    loaded = read_params(path)
    loaded = {k.split(":", 1)[-1]: v for k, v in loaded.items()}  # arg:/aux: of net.export
    if model in RESNETS and model.endswith("_v1") and is_gluoncv_v1_layout(loaded):
        try:
            loaded = {v1_name_to_ours(k): v for k, v in loaded.items()}
        except ValueError as e:
            raise WeightsError(f"{path}: {e}") from None
    params = net._collect_params_with_prefix()
    report = InitReport([], {}, sorted(set(loaded) - set(params)))
    for name, p in params.items():
        if name not in loaded:
            report.fresh[name] = "not in the file"
        elif tuple(loaded[name].shape) != tuple(p.shape):
            report.fresh[name] = (f"shape {tuple(loaded[name].shape)} in the file, "
                                  f"{tuple(p.shape)} here")
        else:
            p.set_data(loaded[name].astype(p.dtype))
            report.loaded.append(name)
    backbone = [n for n in params if n not in CLASSIFIER_PARAMS]
    fitting = [n for n in report.loaded if n not in CLASSIFIER_PARAMS]
    if 2 * len(fitting) < len(backbone):
        raise WeightsError(f"--init {path}: only {len(fitting)} of the {len(backbone)} "
                           f"parameters of {model} outside the classifier fit it: weights of "
                           "another architecture?")
    return report


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


def checkpoint_from_args(args):
    """:func:`open_checkpoint` for the flags of :func:`add_weights_arguments`; a flag that
    must be positive and is not is a one-line WeightsError."""
    resize = getattr(args, "resize", None)
    for flag, value in (("--epoch", args.epoch), ("--classes", args.classes),
                        ("--input-size", args.input_size), ("--resize", resize)):
        if value is not None and value <= 0:
            raise WeightsError(f"{flag} {value}: expected a positive number")
    return open_checkpoint(args.weights, model=args.model, classes=args.classes,
                           input_px=args.input_size, resize=resize, epoch=args.epoch)
