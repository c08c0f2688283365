"""Weights in a .params file as a network: read them (:func:`read_params`), count the
classes of the classifier (:func:`infer_classes`), load them strictly into a model
(:func:`load_network`: ours or GluonCV's, FP16 or FP32) or partly, for fine-tuning
(:func:`init_from`: every parameter whose name and shape fit, GluonCV's ResNet V1 layout
too). Every loader refuses weights with a NaN or an infinity (:func:`check_finite`): a
diverged run's network must not be scored, exported, fine-tuned or distilled from.
"""
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from ..errors import UserError, one_line
from . import RESNETS, get_model
from .convert import is_gluoncv_v1_layout, v1_name_to_ours


class WeightsError(UserError):
    """Weights that cannot be opened or loaded; the message names the file or flag."""


def read_params(path):
    """{name: NDArray} of a .params file, with a one-line error for anything else."""
    try:
        params = mx.nd.load(path)
    except Exception as e:  # MXNetError for files that are not NDArray lists
        raise WeightsError(f"{path}: not an MXNet .params file ({one_line(e, 120)})") from None
    if not isinstance(params, dict) or not params:
        raise WeightsError(f"{path}: holds no named parameters (not a saved network)")
    return params


def check_finite(params, path):
    """WeightsError (one line naming ``path`` and the first bad parameter) unless every
    value of ``params`` ({name: NDArray}, FP16 or FP32, in the file's order) is finite.
    Returns ``params``."""
    bad = [name for name, array in params.items() if not np.isfinite(array.asnumpy()).all()]
    if bad:
        raise WeightsError(f"{path}: non-finite weights (NaN or infinity) in {len(bad)} of "
                           f"{len(params)} parameters, the first {bad[0]}; the run that wrote "
                           "them diverged: use an earlier checkpoint")
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


def load_network(model, classes, path, ctx=None):
    """``model`` with ``classes`` classes and the weights of the .params file ``path``, in
    FP32 (FP16 files are cast), on the context(s) ``ctx`` (default: CPU). Strict: every
    parameter, right shapes, finite values; WeightsError (one line) otherwise."""
    net = get_model(model, classes=classes)
    try:
        net.load_parameters(path, ctx=ctx or mx.cpu(), cast_dtype=True,
                            dtype_source="current")
    except Exception as e:  # MXNet reports bad files and missing/mis-shaped parameters variously
        raise WeightsError(f"{path}: cannot load it as {model} with {classes} classes "
                           f"({one_line(e, 160)})") from None
    check_finite(loaded_values(net), path)
    return net


def loaded_values(net):
    """{name: NDArray} of ``net``'s parameters under the names a .params file gives them
    (the first copy of each, for a net on several devices), for :func:`check_finite`."""
    return {name: p.list_data()[0] for name, p in net._collect_params_with_prefix().items()}


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
    for another number of classes). Returns an :class:`InitReport`. WeightsError for a file
    with a non-finite value (:func:`check_finite`), or if fewer
    than half of the parameters outside the classifier would load (another architecture:
    a ResNet-18-D file shares only its stem with a ResNet-50-D)."""
    loaded = check_finite(read_params(path), path)
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
                           "another architecture? (--set model= the network they were "
                           "trained as)")
    return report
