"""ResNet V1 and the paper's tweaks ResNet-B/C/D (He et al. 2019, §4), in one block family.

The attribute layout (``conv1``, ``bn1``, ``layer1``..``layer4``, ``fc``; blocks with
``conv1/bn1/conv2/bn2[/conv3/bn3]`` and ``downsample``) is GluonCV's
``ResNetV1b``, so a ``.params`` file saved by GluonCV's ``resnet*_v1b/c/d`` loads
with ``load_parameters`` and ours load into GluonCV's. GluonCV's original
``resnet*_v1`` uses another layout (``features``/``output``); :mod:`.convert` maps
it, and :meth:`ResNet.load_parameters` accepts either file.

Unlike GluonCV, every layer is built with its input channels, so ``initialize``
gives every parameter its concrete shape at once (no deferred initialisation):
Horovod's parameter broadcast needs that (horovod#895).
"""
from mxnet import gluon
from mxnet.gluon import nn

BASIC, BOTTLENECK = "basic", "bottleneck"

# depth -> (block, blocks per stage)
SPECS = {
    18: (BASIC, (2, 2, 2, 2)),
    34: (BASIC, (3, 4, 6, 3)),
    50: (BOTTLENECK, (3, 4, 6, 3)),
    101: (BOTTLENECK, (3, 4, 23, 3)),
    152: (BOTTLENECK, (3, 8, 36, 3)),
}
EXPANSION = {BASIC: 1, BOTTLENECK: 4}


def _bn(channels, zero_gamma=False):
    return nn.BatchNorm(in_channels=channels,
                        gamma_initializer="zeros" if zero_gamma else "ones")


def _conv(in_channels, channels, kernel, strides=1, use_bias=False):
    return nn.Conv2D(channels, kernel, strides=strides, padding=kernel // 2,
                     use_bias=use_bias, in_channels=in_channels)


class ResidualBlock(gluon.HybridBlock):
    """One residual block, basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 with 4x expansion).

    Parameters
    ----------
    kind : "basic" or "bottleneck".
    in_channels, planes : input channels; width of the block (output = planes * expansion).
    strides : 1, or 2 for the first block of a downsampling stage.
    stride_in_1x1 : original ResNet (paper's Fig. 1): the stride sits on the first 1x1
        conv of path A. False is ResNet-B: the stride moves to the 3x3 conv.
    avg_down : ResNet-D path B: 2x2 average pool (stride 2) then a stride-1 1x1 conv.
    zero_gamma : initialise the gamma of the block's last BatchNorm to 0 (paper §3.1).
    bias_1x1 : give the bottleneck's 1x1 convs of path A a bias, as GluonCV's
        original ``resnet*_v1`` does (needed only for weight compatibility).
    """

    def __init__(self, kind, in_channels, planes, strides=1, stride_in_1x1=False,
                 avg_down=False, zero_gamma=False, bias_1x1=False, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        out_channels = planes * EXPANSION[kind]
        if kind == BASIC:
            self.conv1 = _conv(in_channels, planes, 3, strides)
            self.bn1 = _bn(planes)
            self.conv2 = _conv(planes, planes, 3)
            self.bn2 = _bn(planes, zero_gamma)
        else:
            s1, s3 = (strides, 1) if stride_in_1x1 else (1, strides)
            self.conv1 = _conv(in_channels, planes, 1, s1, use_bias=bias_1x1)
            self.bn1 = _bn(planes)
            self.conv2 = _conv(planes, planes, 3, s3)
            self.bn2 = _bn(planes)
            self.conv3 = _conv(planes, out_channels, 1, use_bias=bias_1x1)
            self.bn3 = _bn(out_channels, zero_gamma)
        self.downsample = None
        if strides != 1 or in_channels != out_channels:
            self.downsample = nn.HybridSequential(prefix="down_")
            with self.downsample.name_scope():
                if avg_down:
                    # GluonCV keeps a (parameter-free) 1x1 pool in stride-1 stages so
                    # that parameter indices inside `downsample` match its files.
                    self.downsample.add(nn.AvgPool2D(pool_size=strides, strides=strides,
                                                     ceil_mode=True,
                                                     count_include_pad=False))
                    self.downsample.add(_conv(in_channels, out_channels, 1))
                else:
                    self.downsample.add(_conv(in_channels, out_channels, 1, strides))
                self.downsample.add(_bn(out_channels))

    def hybrid_forward(self, F, x):
        out = F.Activation(self.bn1(self.conv1(x)), act_type="relu")
        out = self.bn2(self.conv2(out))
        if self.kind == BOTTLENECK:
            out = self.bn3(self.conv3(F.Activation(out, act_type="relu")))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.Activation(out + shortcut, act_type="relu")


class ResNet(gluon.HybridBlock):
    """ResNet-{18..152} with the paper's tweaks as flags.

    ``stride_in_1x1=True`` is the original ResNet (GluonCV ``v1``), False is ResNet-B
    (``v1b``); ``deep_stem`` is ResNet-C (``v1c``: three 3x3 convs of 32, 32, 64 for the
    7x7 stem); ``avg_down`` with ``deep_stem`` is ResNet-D (``v1d``).

    Input: NCHW float32/float16 batch, any spatial size >= 32 (224 for ImageNet).
    Output: (N, classes) logits.
    """

    def __init__(self, depth, classes=1000, stride_in_1x1=False, deep_stem=False,
                 avg_down=False, zero_gamma=False, bias_1x1=False, stem_width=32,
                 **kwargs):
        super().__init__(**kwargs)
        if depth not in SPECS:
            raise ValueError(f"depth {depth}: expected one of {sorted(SPECS)}")
        kind, blocks = SPECS[depth]
        with self.name_scope():
            if deep_stem:
                self.conv1 = nn.HybridSequential(prefix="conv1_")
                with self.conv1.name_scope():
                    self.conv1.add(_conv(3, stem_width, 3, strides=2), _bn(stem_width),
                                   nn.Activation("relu"),
                                   _conv(stem_width, stem_width, 3), _bn(stem_width),
                                   nn.Activation("relu"),
                                   _conv(stem_width, stem_width * 2, 3))
                stem_channels = stem_width * 2
            else:
                stem_channels = 64
                self.conv1 = nn.Conv2D(64, 7, strides=2, padding=3, use_bias=False,
                                       in_channels=3)
            self.bn1 = _bn(stem_channels)
            self.relu = nn.Activation("relu")
            self.maxpool = nn.MaxPool2D(pool_size=3, strides=2, padding=1)
            in_channels = stem_channels
            for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
                layer = nn.HybridSequential(prefix=f"layers{stage}_")
                with layer.name_scope():
                    for i in range(n):
                        layer.add(ResidualBlock(
                            kind, in_channels, planes,
                            strides=2 if (i == 0 and stage > 1) else 1,
                            stride_in_1x1=stride_in_1x1, avg_down=avg_down,
                            zero_gamma=zero_gamma, bias_1x1=bias_1x1))
                        in_channels = planes * EXPANSION[kind]
                setattr(self, f"layer{stage}", layer)
            self.avgpool = nn.GlobalAvgPool2D()
            self.flat = nn.Flatten()
            self.fc = nn.Dense(classes, in_units=in_channels)

    def blocks(self):
        """All residual blocks, stage by stage."""
        return [b for s in (self.layer1, self.layer2, self.layer3, self.layer4) for b in s]

    def load_parameters(self, filename, ctx=None, **kwargs):
        """Load a ``.params`` file in our (= GluonCV v1b/c/d) layout or GluonCV's v1 layout."""
        from .convert import load_any_layout
        load_any_layout(self, filename, ctx=ctx, **kwargs)

    def hybrid_forward(self, F, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flat(self.avgpool(x)))
