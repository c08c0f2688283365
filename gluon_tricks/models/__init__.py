"""The paper's networks: ResNet V1 and ResNet-B/C/D (ours), MobileNet and Inception-V3 (GluonCV).

>>> net = get_model("resnet50_v1d", classes=1000, zero_gamma=True)
>>> net.initialize(initializer())
"""
import mxnet as mx

from .convert import save_gluoncv_v1
from .resnet import BASIC, SPECS, ResNet, ResidualBlock

# version suffix -> ResNet flags (paper §4: B moves the stride, C deepens the stem,
# D adds the average-pool shortcut). The original V1 carries GluonCV's 1x1 biases.
VARIANTS = {
    "v1": dict(stride_in_1x1=True, bias_1x1=True),
    "v1b": dict(),
    "v1c": dict(deep_stem=True),
    "v1d": dict(deep_stem=True, avg_down=True),
}
RESNETS = [f"resnet{d}_{v}" for v in VARIANTS for d in sorted(SPECS)]
# The paper's other two networks come from GluonCV's zoo; they have no residual blocks.
# our name -> (GluonCV zoo name, input size in pixels)
ZOO = {"mobilenet1.0": ("mobilenet1.0", 224), "inception_v3": ("inceptionv3", 299)}
MODEL_NAMES = RESNETS + list(ZOO)


def input_size(name):
    """The training/validation crop size in pixels the paper uses for this network."""
    return ZOO[name][1] if name in ZOO else 224


def smallest_input_size(name):
    """The smallest crop in pixels the network takes: Inception-v3 pools its last 8 x 8
    map of a 299 px input with a fixed window; the others downsample 32 times."""
    return 299 if name == "inception_v3" else 32


def get_model(name, classes=1000, zero_gamma=False, zero_gamma_basic=True, **kwargs):
    """Build a network by name (``resnet{18,34,50,101,152}_v1{,b,c,d}``, ``mobilenet1.0``,
    ``inception_v3``). Parameters are not initialised: call ``net.initialize(initializer())``.

    zero_gamma: start the last BatchNorm gamma of every residual block at 0 (paper §3.1).
    zero_gamma_basic: with zero_gamma, also on basic blocks (ResNet-18/34); GluonCV's
        ``last_gamma`` reaches only bottlenecks.
    kwargs: passed to :class:`ResNet` (or to GluonCV's constructor for the zoo networks).
    """
    if name in ZOO:
        if zero_gamma:
            raise ValueError(f"zero_gamma applies to residual blocks; {name} has none "
                             "(set zero_gamma: false in the recipe)")
        from gluoncv.model_zoo import get_model as gluoncv_get_model
        return gluoncv_get_model(ZOO[name][0], classes=classes, pretrained=False, **kwargs)
    depth, _, version = name.removeprefix("resnet").partition("_")
    if name not in RESNETS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    basic = SPECS[int(depth)][0] == BASIC
    return ResNet(int(depth), classes=classes,
                  zero_gamma=zero_gamma and (zero_gamma_basic or not basic),
                  **VARIANTS[version], **kwargs)


INITIALIZERS = ("xavier", "msra")


def initializer(kind="xavier"):
    """The initialisation of the networks as one MXNet initializer: "xavier", the paper's
    (§2.1), or "msra", GluonCV's ``train_imagenet.py`` (``mx.init.MSRAPrelu()`` with its
    defaults: conv and dense weights Gaussian of variance 2 / (1.0625 (fan_in + fan_out) / 2),
    the 1.0625 being 1 + slope^2 for slope 0.25; biases, gamma and beta as below).

    xavier: conv and dense weights: Xavier uniform on [-a, a], a = sqrt(6 / (fan_in + fan_out)),
    with MXNet's (and Glorot's) fan convention fan_in = c_in * k_h * k_w,
    fan_out = c_out * k_h * k_w (for dense layers k = 1). The paper words d_in/d_out as
    channel counts; counting the kernel's receptive field is what MXNet's Xavier, which
    the authors used, does. Biases 0; BatchNorm gamma 1 and beta 0 (or gamma 0 where a
    layer was built with zero gamma: a layer's own initializer takes precedence).
    """
    if kind == "msra":
        return mx.init.MSRAPrelu()
    if kind != "xavier":
        raise ValueError(f"initializer {kind!r}: expected one of {', '.join(INITIALIZERS)}")
    return mx.init.Xavier(rnd_type="uniform", factor_type="avg", magnitude=3)


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


__all__ = ["get_model", "gluoncv_model", "gluoncv_name", "initializer", "input_size",
           "smallest_input_size",
           "MODEL_NAMES", "RESNETS", "ResNet", "ResidualBlock", "save_gluoncv_v1"]
