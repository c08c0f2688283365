"""GluonCV's Faster-RCNN (paper Table 8) and FCN (Table 9) on a backbone of ours.

The backbone is GluonCV's own ``ResNetV1b`` class built for our model name (ResNet-B/C/D
share its parameter layout) and loaded from a classification checkpoint of ours or from a
GluonCV ``.params`` file; ``None`` gives the same network freshly initialised (the paper's
Xavier init), the "no pretraining" control. The detection and segmentation networks are
GluonCV's ``FasterRCNN`` and ``FCN`` classes with the settings of its
``faster_rcnn_resnet50_v1b_voc`` and ``fcn_resnet50_ade`` models. GluonCV builds those
around a backbone it takes from its zoo by name (and downloads); here the backbone is ours.

>>> det = faster_rcnn("resnet50_v1d", "runs/r50d_cosine", VOCDetection.CLASSES)
>>> seg = fcn("resnet50_v1d", "runs/r50d_cosine", nclass=150)  # ADE20K
"""
import mxnet as mx
from mxnet.gluon import nn

from ..errors import UserError, one_line
from ..models import RESNETS, gluoncv_model, initializer
from ..models.weights import check_finite, infer_classes, read_params

# GluonCV's ResNetV1b layout; the original V1 has another (and no dilated version)
BACKBONES = tuple(m for m in RESNETS if not m.endswith("_v1"))
STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")

# GluonCV's faster_rcnn_resnet50_v1b_voc (model_zoo/rcnn/faster_rcnn/predefined_models.py)
VOC_SETTINGS = dict(
    short=600, max_size=1000, nms_thresh=0.3, nms_topk=400, post_nms=100, roi_mode="align",
    roi_size=(14, 14), strides=16, clip=None, rpn_channel=1024, base_size=16,
    scales=(2, 4, 8, 16, 32), ratios=(0.5, 1, 2), alloc_size=(128, 128), rpn_nms_thresh=0.7,
    rpn_train_pre_nms=12000, rpn_train_post_nms=2000, rpn_test_pre_nms=6000,
    rpn_test_post_nms=300, rpn_min_size=16, num_sample=128, pos_iou_thresh=0.5,
    pos_ratio=0.25, max_num_gt=100)
# which parameters train: GluonCV's pattern for v1b backbones (the stem and stage 1 stay
# frozen, as do all BatchNorm layers: the backbone runs with use_global_stats)
TRAIN_PATTERNS = "|".join([".*dense", ".*rpn", ".*down(2|3|4)_conv", ".*layers(2|3|4)_conv"])


class NetError(UserError):
    """A backbone that cannot be built or loaded; names the model or the file."""


def _is_basic(model):
    """18/34 layers: basic blocks, 512 channels out of stage 4 (2048 for bottlenecks)."""
    return model.split("_")[0] in ("resnet18", "resnet34")


def backbone(model, params, ctx, **kwargs):
    """GluonCV's ResNetV1b network of ``model`` (e.g. "resnet50_v1d") on ``ctx``.

    params : .params file of ours or of GluonCV (FP16 files are cast to FP32), or None
        for the paper's random initialisation.
    kwargs : ResNetV1b's (dilated, use_global_stats, norm_layer, norm_kwargs).
    """
    if model not in BACKBONES:
        raise NetError(f"backbone model {model}: expected one of {', '.join(BACKBONES)}")
    classes = (1000 if params is None
               else infer_classes(check_finite(read_params(params), params), params))
    net = gluoncv_model(model, classes, **kwargs)
    if params is None:
        net.initialize(initializer(), ctx=ctx)
        return net
    try:
        net.load_parameters(params, ctx=ctx, cast_dtype=True, dtype_source="current")
    except Exception as e:  # MXNet reports missing/extra/mis-shaped parameters variously
        raise NetError(f"{params}: does not hold {model} parameters ({one_line(e)})") from None
    return net


def _initialize_rest(net, ctx):
    """Initialise the parameters the backbone did not bring (GluonCV's training scripts do
    the same after loading a pretrained base)."""
    for p in net.collect_params().values():
        if p._data is None and not p._deferred_init:
            p.initialize(ctx=ctx)


def faster_rcnn(model, params, classes, ctx=None, **overrides):
    """GluonCV's Faster-RCNN (Table 8) on our ``model``: the ``faster_rcnn_resnet50_v1b_voc``
    settings (:data:`VOC_SETTINGS`; frozen BatchNorm, stem to stage 3 as features, stage 4
    as the RoI head, RoIAlign 14x14, stride 16) with our backbone in place of GluonCV's.

    params : backbone weights (see :func:`backbone`), or None for a random backbone.
    classes : names of the foreground classes, e.g. VOCDetection.CLASSES.
    overrides : FasterRCNN keyword arguments replacing the VOC settings (e.g. short=128).
    In inference mode, ``net(x)`` with x (1, 3, H, W) float32 gives (ids, scores, boxes)
    of shapes (1, N, 1), (1, N, 1), (1, N, 4); in training mode GluonCV's
    ``ForwardBackwardTask`` drives it.
    """
    from gluoncv.model_zoo.rcnn.faster_rcnn import FasterRCNN
    ctx = ctx or mx.cpu()
    base = backbone(model, params, ctx, dilated=False, use_global_stats=True)
    features, top_features = nn.HybridSequential(), nn.HybridSequential()
    for layer in STAGES[:-1]:
        features.add(getattr(base, layer))
    top_features.add(base.layer4)
    settings = dict(VOC_SETTINGS, train_patterns=TRAIN_PATTERNS)
    settings.update(overrides)
    net = FasterRCNN(features=features, top_features=top_features, classes=classes,
                     **settings)
    _initialize_rest(net, ctx)
    # the heads' dense layers learn their input size from a first forward pass; make it
    # now, so that the network can be copied to several devices and a Trainer made on it
    net(mx.nd.zeros((1, 3, 128, 128), ctx=ctx))
    return net


def fcn(model, params, nclass, aux=True, ctx=None, **kwargs):
    """GluonCV's FCN (Table 9) on our ``model``, dilated to output stride 8 as GluonCV's.

    GluonCV's SegBaseModel builds its base by name (``resnet50`` -> ``resnet50_v1s``); we
    build that FCN and put the stages of our dilated backbone in their places, which is
    what SegBaseModel itself does with the stages of the network it builds. An 18/34-layer
    backbone gets heads for its 512/256 channels (GluonCV's ``_FCNHead``, at 10x lr as
    GluonCV's heads).

    params : backbone weights (see :func:`backbone`), or None for a random backbone.
    nclass : segmentation classes (150 for ADE20K). kwargs: FCN's (base_size, crop_size,
        norm_layer, norm_kwargs).
    ``net(x)`` with x (N, 3, H, W), H and W the crop size, gives a tuple of (N, nclass, H, W)
    score maps (two with ``aux``); ``net.predict(x)`` works at any size.
    """
    from gluoncv.model_zoo.fcn import FCN, _FCNHead
    ctx = ctx or mx.cpu()
    net = FCN(nclass, backbone="resnet50", aux=aux, ctx=ctx, pretrained_base=False, **kwargs)
    norm = {k: kwargs[k] for k in ("norm_layer", "norm_kwargs") if k in kwargs}
    base = backbone(model, params, ctx, dilated=True, **norm)
    for stage in STAGES:
        setattr(net, stage, getattr(base, stage))
    if _is_basic(model):
        with net.name_scope():
            net.head = _FCNHead(512, nclass, **norm)
            if aux:
                net.auxlayer = _FCNHead(256, nclass, **norm)
        for head in (net.head, net.auxlayer) if aux else (net.head,):
            head.initialize(ctx=ctx)
            head.collect_params().setattr("lr_mult", 10)
    _initialize_rest(net, ctx)
    return net
