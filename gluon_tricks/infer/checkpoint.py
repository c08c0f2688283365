"""Trained weights and what is needed to use them: the one place where the tools that score,
plot, predict with or export a network (validate, predict, logit_gap, export_onnx) turn "a
run folder or a .params file" into a :class:`Checkpoint`, and that into a network.

A run folder gives its ``best.params`` (or ``checkpoints/epoch-NNNN.params``), and its
config.yaml the model, classes, label smoothing and validation pipeline (input size,
resize, normalisation). A bare ``.params`` file (ours or GluonCV's, FP16 or FP32, in our
layout or GluonCV's ResNet V1 layout) needs the model named; its classes are read from the
classifier weight. Arguments given explicitly override what the run says.
"""
import os
from dataclasses import dataclass
from typing import Optional

from .. import data as gt_data
from ..models import MODEL_NAMES, input_size
from ..models.weights import WeightsError, check_finite, infer_classes, load_network, read_params
from ..run.checkpoints import Checkpoints
from ..run.folder import RunFolder, RunFolderError, params_of
from ..train.config import from_saved


@dataclass
class Checkpoint:
    """A network to use: its .params file and what is needed to rebuild and read it.

    label : a name for tables and legends. model, classes : as get_model takes them.
    eps, mode : the label smoothing it was trained with (0 if unknown). data : the
    DataConfig of its validation pipeline (input size, resize, normalisation).
    classes_file : the class names of its training set (the ``X_classes.txt`` beside a run's
    training .rec), if known.
    """
    label: str
    params: str
    model: str
    classes: int
    eps: float
    mode: str
    data: gt_data.DataConfig
    classes_file: Optional[str] = None


@dataclass(frozen=True)
class CheckpointOverrides:
    """What the caller says of a checkpoint instead of its run (the tools' --model,
    --classes, --input-size and --resize, and logit_gap's --eps); None leaves it to the
    run."""
    model: Optional[str] = None
    classes: Optional[int] = None
    input_px: Optional[int] = None  # centre crop side, pixels
    resize: Optional[int] = None  # short side before the crop, pixels
    eps: Optional[float] = None  # label smoothing


def open_checkpoint(path, label=None, epoch=None, overrides=CheckpointOverrides()):
    """Describe the network ``path`` holds: a run folder (its best.params, or the checkpoint
    of ``epoch``; model, classes, validation pipeline and label smoothing from its
    config.yaml, what ``overrides`` (:class:`CheckpointOverrides`) gives overrides them) or
    a .params file (``model`` required; classes read from the classifier weight if not
    given; the network's own input size and resize unless given; eps 0 unless given). Raises WeightsError or
    RunFolderError (one line); ``classes`` that the classifier weight contradicts is a
    WeightsError (the network could not load)."""
    model, classes, eps = overrides.model, overrides.classes, overrides.eps
    input_px, resize = overrides.input_px, overrides.resize
    classes_file = run_classes = None
    if os.path.isdir(path):
        folder = RunFolder(path)
        classes_file = _training_classes(folder)
        cfg = from_saved(folder.read_config(), folder.config_path)
        model, run_classes = model or cfg.model, cfg.classes
        eps = cfg.label_smoothing if eps is None else eps
        mode, data, default_label = cfg.label_smoothing_mode, cfg.data, folder.name
        if epoch is not None:
            checkpoints = Checkpoints(folder)
            params = checkpoints.path(epoch, "params")
            if not os.path.isfile(params):
                kept = ", ".join(map(str, checkpoints.epochs())) or "none"
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
                      classes=_classes(params, classes, run_classes), eps=float(eps or 0.0),
                      mode=mode, data=data, classes_file=classes_file)


def _classes(params, classes=None, run_classes=None):
    """The classes of the network in ``params``: its classifier weight's rows; for weights
    without one, ``classes`` (--classes) or else ``run_classes`` (its run's config). A
    ``classes`` the weight contradicts is refused: the hint of a set that does not fit is
    not to load the network with other classes, which fails."""
    weights = check_finite(read_params(params), params)
    try:
        held = infer_classes(weights, params)
    except WeightsError:  # no classifier weight to read them from
        if classes or run_classes:
            return int(classes or run_classes)
        raise
    if classes is None:
        return held
    if held != classes:
        raise WeightsError(f"--classes {classes}: {params} holds a network of {held} classes "
                           "(its classifier weight); leave --classes out")
    return held


def _training_classes(folder):
    """The X_classes.txt of a run's training set (from its command.json), or None."""
    try:
        rec = folder.read_command().get("rec_train")
    except RunFolderError:
        return None
    return gt_data.classes_file(rec) if isinstance(rec, str) else None


def load_net(ckpt, ctx=None):
    """The network of the :class:`Checkpoint` ``ckpt`` (:func:`load_network`)."""
    return load_network(ckpt.model, ckpt.classes, ckpt.params, ctx)
