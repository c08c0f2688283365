"""Weights to and from GluonCV (paper §6: Tables 8 and 9 use the classifiers as backbones of
GluonCV's detection and segmentation networks, :mod:`gluon_tricks.transfer.nets`).

Our ResNets share GluonCV's ``resnet*_v1b/c/d`` parameter layout, so exporting those is a
load-and-save that also casts FP16 checkpoints to FP32; ``resnet*_v1`` files are renamed to
GluonCV's ``ResNetV1`` layout (:mod:`gluon_tricks.models.convert`). The number of classes
is read from the classifier's weight (``fc.weight``, or ``output.weight`` in the V1 layout).

>>> export_to_gluoncv("runs/r50d_cosine", "r50d.params", "resnet50_v1d")
"""
import os

from ..errors import UserError, one_line
from ..models import RESNETS, ZOO, get_model, gluoncv_model
from ..models.weights import check_finite, infer_classes, read_params
from ..run.folder import RunFolder, RunFolderError, params_of, replace_atomically
from .outputs import output_of_export


class ExportError(UserError):
    """A checkpoint or parameter file that cannot be exported or imported; names the file.
    (Unreadable files raise :class:`gluon_tricks.models.weights.WeightsError`.)"""


def model_of_run(path):
    """The ``model`` of a run folder's config.yaml, or None when ``path`` is not a folder."""
    if not os.path.isdir(path):
        return None
    try:
        return RunFolder(path).read_config().get("model")
    except RunFolderError:
        return None


def _check_model(model):
    names = RESNETS + list(ZOO)
    if model not in names:
        raise ExportError(f"--model {model}: unknown; valid names: {', '.join(names)}")


def _load(net, path, what, ctx=None):
    """Strict load (every parameter, right shapes), FP16 files cast to the net's FP32."""
    try:
        net.load_parameters(path, ctx=ctx, cast_dtype=True, dtype_source="current")
    except Exception as e:  # MXNet reports missing/extra/mis-shaped parameters variously
        raise ExportError(f"{path}: does not hold {what} parameters ({one_line(e)})") from None


def export_to_gluoncv(checkpoint, out, model, force=False):
    """Write the network of ``checkpoint`` (run folder or .params of ours) to ``out`` so that
    ``gluoncv.model_zoo.get_model(model, pretrained=False, classes=K).load_parameters(out)``
    accepts it (FP32; GluonCV's V1 layout for ``*_v1``). Checks that it does before the file
    takes its name; returns K. An existing ``out`` is replaced only with ``force``
    (:func:`gluon_tricks.export.outputs.output_of_export`)."""
    _check_model(model)
    with output_of_export(out, force, ExportError):
        src = params_of(checkpoint)
        classes = infer_classes(check_finite(read_params(src), src), src)
        net = get_model(model, classes=classes)
        _load(net, src, f"our {model}")

        def write(tmp):
            if model.endswith("_v1"):
                from ..models import save_gluoncv_v1
                save_gluoncv_v1(net, tmp)
            else:
                net.save_parameters(tmp)
            _load(gluoncv_model(model, classes), tmp, f"GluonCV {model}")
        replace_atomically(out, write)
    return classes


def import_from_gluoncv(src, out, model, force=False):
    """Write a GluonCV .params file of ``model`` as a .params file of ours (e.g. a
    distillation teacher). Returns the number of classes. ``force`` as for
    :func:`export_to_gluoncv`."""
    _check_model(model)
    with output_of_export(out, force, ExportError):
        if not os.path.isfile(src):
            raise ExportError(f"{src}: no such file")
        classes = infer_classes(check_finite(read_params(src), src), src)
        net = get_model(model, classes=classes)
        _load(net, src, f"GluonCV {model}")
        replace_atomically(out, net.save_parameters)
    return classes

