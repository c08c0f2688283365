"""Weights to and from GluonCV, and GluonCV's detection and segmentation networks built on
our trained ResNet-50-D (paper §6, Tables 8 and 9 use the classifiers as backbones).

Our ResNets share GluonCV's ``resnet*_v1b/c/d`` parameter layout, so exporting those is a
load-and-save that also casts FP16 checkpoints to FP32; ``resnet*_v1`` files are renamed to
GluonCV's ``ResNetV1`` layout (:mod:`gluon_tricks.models.convert`). The number of classes
is read from the classifier's weight (``fc.weight``, or ``output.weight`` in the V1 layout).

>>> export_to_gluoncv("runs/r50d_cosine", "r50d.params", "resnet50_v1d")
>>> det = faster_rcnn_resnet50_v1d("r50d.params", classes=["cat", "dog"])
>>> seg = fcn_resnet50_v1d("r50d.params", nclass=150)  # ADE20K
"""
import os

import mxnet as mx
from mxnet.gluon import nn

from ..errors import UserError, one_line
from ..models import RESNETS, ZOO, get_model
from ..runfolder import RunFolder, RunFolderError, params_of
from ..weights import infer_classes, read_params  # noqa: F401 (part of this module's API)


class ExportError(UserError):
    """A checkpoint or parameter file that cannot be exported or imported; names the file.
    (Unreadable files raise :class:`gluon_tricks.weights.WeightsError`.)"""


def model_of_run(path):
    """The ``model`` of a run folder's config.yaml, or None when ``path`` is not a folder."""
    if not os.path.isdir(path):
        return None
    try:
        return RunFolder(path).read_config().get("model")
    except RunFolderError:
        return None


def gluoncv_name(model):
    """GluonCV's zoo name of our model (they differ only for Inception-V3), or None where
    its zoo has no such name (18/34-layer v1c/v1d: :func:`gluoncv_model` builds those)."""
    if model in ZOO:
        return ZOO[model][0]
    return None if _is_small_cd(model) else model


def _is_small_cd(model):
    depth, version = model[len("resnet"):].split("_")
    return version in ("v1c", "v1d") and depth in ("18", "34")


def gluoncv_model(model, classes, **kwargs):
    """GluonCV's own network for our model name, unloaded (pretrained=False).
    GluonCV's zoo lacks 18/34-layer v1c/v1d names; its ResNetV1b class builds them."""
    from gluoncv.model_zoo import get_model as gluoncv_get_model
    from gluoncv.model_zoo.resnetv1b import BasicBlockV1b, ResNetV1b
    if model in ZOO:
        return gluoncv_get_model(ZOO[model][0], classes=classes, pretrained=False, **kwargs)
    if _is_small_cd(model):
        depth, version = model[len("resnet"):].split("_")
        layers = [2, 2, 2, 2] if depth == "18" else [3, 4, 6, 3]
        return ResNetV1b(BasicBlockV1b, layers, classes=classes, deep_stem=True,
                         avg_down=version == "v1d", name_prefix=f"resnet{version}_", **kwargs)
    return gluoncv_get_model(model, classes=classes, pretrained=False, **kwargs)


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


def export_to_gluoncv(checkpoint, out, model):
    """Write the network of ``checkpoint`` (run folder or .params of ours) to ``out`` so that
    ``gluoncv.model_zoo.get_model(model, pretrained=False, classes=K).load_parameters(out)``
    accepts it (FP32; GluonCV's V1 layout for ``*_v1``). Checks that it does; returns K."""
    _check_model(model)
    src = params_of(checkpoint)
    classes = infer_classes(read_params(src), src)
    net = get_model(model, classes=classes)
    _load(net, src, f"our {model}")
    _makedirs_for(out)
    if model.endswith("_v1"):
        from ..models import save_gluoncv_v1
        save_gluoncv_v1(net, out)
    else:
        net.save_parameters(out)
    _load(gluoncv_model(model, classes), out, f"GluonCV {model}")
    return classes


def import_from_gluoncv(src, out, model):
    """Write a GluonCV .params file of ``model`` as a .params file of ours (e.g. a
    distillation teacher). Returns the number of classes."""
    _check_model(model)
    if not os.path.isfile(src):
        raise ExportError(f"{src}: no such file")
    classes = infer_classes(read_params(src), src)
    net = get_model(model, classes=classes)
    _load(net, src, f"GluonCV {model}")
    _makedirs_for(out)
    net.save_parameters(out)
    return classes


def _makedirs_for(path):
    if os.path.isdir(path) or path.endswith(os.sep):
        raise ExportError(f"{path}: a folder; name the .params file to write")
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)


def _resnet50_v1d_base(params, ctx, **kwargs):
    """GluonCV's resnet50_v1d (any GluonCV kwargs: dilated, use_global_stats, norm_layer)
    with the weights of ``params`` (a file from :func:`export_to_gluoncv`)."""
    from gluoncv.model_zoo.resnetv1b import resnet50_v1d
    base = resnet50_v1d(pretrained=False, classes=infer_classes(read_params(params), params),
                        **kwargs)
    _load(base, params, "GluonCV resnet50_v1d", ctx=ctx)
    return base


def _initialize_rest(net, ctx):
    """Initialise the parameters the backbone did not bring (GluonCV's training scripts do
    the same after loading a pretrained base)."""
    for p in net.collect_params().values():
        if p._data is None and not p._deferred_init:
            p.initialize(ctx=ctx)


def faster_rcnn_resnet50_v1d(params, classes, ctx=None, **overrides):
    """GluonCV Faster-RCNN (Table 8) on our ResNet-50-D: GluonCV's
    ``faster_rcnn_resnet50_v1b_voc`` recipe (frozen BatchNorm, stages 1-3 as features,
    stage 4 as the RoI head, RoIAlign 14x14, stride 16) with ``resnet50_v1d`` in place of
    ``resnet50_v1b``.

    params : .params file of GluonCV's resnet50_v1d (from :func:`export_to_gluoncv`).
    classes : names of the foreground classes, e.g. VOCDetection.CLASSES.
    overrides : FasterRCNN keyword arguments replacing the VOC settings (e.g. short=128).
    In inference mode, ``net(x)`` with x (1, 3, H, W) float32 gives (ids, scores, boxes)
    of shapes (1, N, 1), (1, N, 1), (1, N, 4).
    """
    from gluoncv.model_zoo.rcnn.faster_rcnn import FasterRCNN
    ctx = ctx or mx.cpu()
    base = _resnet50_v1d_base(params, ctx, dilated=False, use_global_stats=True)
    features, top_features = nn.HybridSequential(), nn.HybridSequential()
    for layer in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"):
        features.add(getattr(base, layer))
    top_features.add(base.layer4)
    # GluonCV's pattern for v1b: stages 2-4 train, the stem and stage 1 stay frozen
    train_patterns = "|".join([".*dense", ".*rpn", ".*down(2|3|4)_conv", ".*layers(2|3|4)_conv"])
    settings = dict(
        short=600, max_size=1000, train_patterns=train_patterns, nms_thresh=0.3, nms_topk=400,
        post_nms=100, roi_mode="align", roi_size=(14, 14), strides=16, clip=None,
        rpn_channel=1024, base_size=16, scales=(2, 4, 8, 16, 32), ratios=(0.5, 1, 2),
        alloc_size=(128, 128), rpn_nms_thresh=0.7, rpn_train_pre_nms=12000,
        rpn_train_post_nms=2000, rpn_test_pre_nms=6000, rpn_test_post_nms=300,
        rpn_min_size=16, num_sample=128, pos_iou_thresh=0.5, pos_ratio=0.25, max_num_gt=100)
    settings.update(overrides)
    net = FasterRCNN(features=features, top_features=top_features, classes=classes,
                     **settings)
    _initialize_rest(net, ctx)
    return net


STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


def fcn_resnet50_v1d(params, nclass, aux=True, ctx=None, **kwargs):
    """GluonCV FCN (Table 9) on our ResNet-50-D, dilated (output stride 8) as GluonCV's FCN.

    GluonCV's SegBaseModel always builds its base by name (``resnet50`` -> ``resnet50_v1s``,
    the deep stem of width 64 without average-pool shortcuts); we build that FCN and put
    the stages of a dilated ``resnet50_v1d`` loaded from ``params`` in their places, which
    is what SegBaseModel itself does with the stages of the network it builds.

    params : .params file of GluonCV's resnet50_v1d (from :func:`export_to_gluoncv`).
    nclass : segmentation classes (150 for ADE20K). kwargs: FCN's (base_size, crop_size,
        norm_layer, norm_kwargs).
    ``net(x)`` with x (N, 3, H, W), H and W the crop size, gives a tuple of (N, nclass, H, W)
    score maps (two with ``aux``); ``net.predict(x)`` works at any size.
    """
    from gluoncv.model_zoo.fcn import FCN
    ctx = ctx or mx.cpu()
    net = FCN(nclass, backbone="resnet50", aux=aux, ctx=ctx, pretrained_base=False, **kwargs)
    base_kwargs = {k: kwargs[k] for k in ("norm_layer", "norm_kwargs") if k in kwargs}
    base = _resnet50_v1d_base(params, ctx, dilated=True, **base_kwargs)
    for stage in STAGES:
        setattr(net, stage, getattr(base, stage))
    _initialize_rest(net, ctx)
    return net
