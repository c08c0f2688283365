"""Parameter-name mapping between our ResNet layout and GluonCV's original ``resnet*_v1``.

GluonCV's ``resnet*_v1b/c/d`` share our layout, so their files need no mapping.
Its ``resnet*_v1`` (``ResNetV1``) names the same tensors differently:

=================================  ==============================
GluonCV ``resnet*_v1``             ours (= GluonCV ``v1b`` layout)
=================================  ==============================
``features.0`` / ``features.1``    ``conv1`` / ``bn1``
``features.{3+s}.{i}.body.0/1``    ``layer{s}.{i}.conv1`` / ``bn1``
``features.{3+s}.{i}.body.3/4``    ``layer{s}.{i}.conv2`` / ``bn2``
``features.{3+s}.{i}.body.6/7``    ``layer{s}.{i}.conv3`` / ``bn3``
``features.{3+s}.{i}.downsample``  ``layer{s}.{i}.downsample``
``output``                         ``fc``
=================================  ==============================

Our V1 networks are built with ``bias_1x1=True`` so that the bottleneck's 1x1
conv biases GluonCV's V1 carries have a place.
"""
import os
import re
import tempfile

import mxnet as mx
from mxnet import gluon

_BODY_TO_OURS = {"0": "conv1", "1": "bn1", "3": "conv2", "4": "bn2", "6": "conv3", "7": "bn3"}
_OURS_TO_BODY = {v: k for k, v in _BODY_TO_OURS.items()}
_V1_BLOCK = re.compile(r"^features\.(\d+)\.(\d+)\.(body\.(\d+)|downsample)\.(.+)$")
_OUR_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.(conv\d|bn\d|downsample)\.(.+)$")


def is_gluoncv_v1_layout(names):
    """True if the parameter names are GluonCV ``resnet*_v1``'s (``features.*``, ``output.*``)."""
    return any(n.startswith("features.") for n in names)


def v1_name_to_ours(name):
    """Map one GluonCV ``resnet*_v1`` parameter name to ours; ValueError if unknown."""
    for old, new in (("features.0.", "conv1."), ("features.1.", "bn1."), ("output.", "fc.")):
        if name.startswith(old):
            return new + name[len(old):]
    m = _V1_BLOCK.match(name)
    if m is None:
        raise ValueError(f"parameter {name!r} is not part of a GluonCV ResNet V1")
    feature, block, part, body_index, rest = m.groups()
    stage = int(feature) - 3
    if part == "downsample":
        return f"layer{stage}.{block}.downsample.{rest}"
    return f"layer{stage}.{block}.{_BODY_TO_OURS[body_index]}.{rest}"


def our_name_to_v1(name):
    """Inverse of :func:`v1_name_to_ours`."""
    for old, new in (("conv1.", "features.0."), ("bn1.", "features.1."), ("fc.", "output.")):
        if name.startswith(old):
            return new + name[len(old):]
    m = _OUR_BLOCK.match(name)
    if m is None:
        raise ValueError(f"parameter {name!r} has no place in a GluonCV ResNet V1")
    stage, block, part, rest = m.groups()
    feature = int(stage) + 3
    if part == "downsample":
        return f"features.{feature}.{block}.downsample.{rest}"
    return f"features.{feature}.{block}.body.{_OURS_TO_BODY[part]}.{rest}"


def load_any_layout(net, filename, ctx=None, **kwargs):
    """``net.load_parameters(filename)`` for a file in our layout or GluonCV's V1 layout."""
    loaded = mx.nd.load(filename)
    if not isinstance(loaded, dict) or not is_gluoncv_v1_layout(loaded):
        gluon.HybridBlock.load_parameters(net, filename, ctx=ctx, **kwargs)
        return
    converted = {v1_name_to_ours(k): v for k, v in loaded.items()}
    fd, tmp = tempfile.mkstemp(suffix=".params")
    os.close(fd)
    try:
        mx.nd.save(tmp, converted)
        gluon.HybridBlock.load_parameters(net, tmp, ctx=ctx, **kwargs)
    finally:
        os.remove(tmp)


def save_gluoncv_v1(net, filename):
    """Save our V1 network's parameters in the layout of GluonCV's ``resnet*_v1``."""
    params = net._collect_params_with_prefix()  # the structural names save_parameters uses
    mx.nd.save(filename, {our_name_to_v1(k): p._reduce() for k, p in params.items()})
