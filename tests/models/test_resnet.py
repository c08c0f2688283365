"""Our ResNets against GluonCV's own implementation (paper §4): same parameters, same outputs."""
import re

import mxnet as mx
import numpy as np
import pytest
from gluoncv.model_zoo import get_model as gluoncv_get_model
from gluoncv.model_zoo.resnetv1b import BasicBlockV1b, ResNetV1b

from gluon_tricks.models import RESNETS, get_model, initializer, save_gluoncv_v1

CLASSES = 7
X = mx.nd.array(np.random.RandomState(0).uniform(-2, 2, size=(2, 3, 64, 64)))


def gluoncv_net(name, **kwargs):
    """GluonCV's network of that name; its zoo lacks 18/34-layer v1c/v1d, built as
    docs/notes.md §3 says."""
    depth, version = name[len("resnet"):].split("_")
    if version in ("v1c", "v1d") and depth in ("18", "34"):
        layers = [2, 2, 2, 2] if depth == "18" else [3, 4, 6, 3]
        return ResNetV1b(BasicBlockV1b, layers, classes=CLASSES, deep_stem=True,
                         avg_down=version == "v1d", name_prefix=f"resnet{version}_", **kwargs)
    return gluoncv_get_model(name, classes=CLASSES, pretrained=False, **kwargs)


def randomise(net, seed):
    """Random values in every parameter, BatchNorm running statistics included."""
    rng = np.random.RandomState(seed)
    for name, p in net.collect_params().items():
        low = 0.5 if name.endswith("running_var") else -0.5
        p.set_data(mx.nd.array(rng.uniform(low, 1.0, size=p.shape)))


def n_params(net):
    return sum(int(np.prod(p.shape)) for p in net.collect_params().values())


def save_ours_for_gluoncv(net, name, path):
    if name.endswith("_v1"):
        save_gluoncv_v1(net, path)
    else:
        net.save_parameters(path)


@pytest.mark.parametrize("name", RESNETS)
def test_same_outputs_as_gluoncv_both_ways(name, tmp_path):
    theirs = gluoncv_net(name)
    theirs.initialize()
    theirs(X)
    randomise(theirs, seed=1)
    theirs.save_parameters(str(tmp_path / "theirs.params"))

    ours = get_model(name, classes=CLASSES)
    ours.load_parameters(str(tmp_path / "theirs.params"))
    assert n_params(ours) == n_params(theirs)
    np.testing.assert_allclose(ours(X).asnumpy(), theirs(X).asnumpy(), rtol=1e-4, atol=1e-4)

    # and back: our own weights into GluonCV's network
    randomise(ours, seed=2)
    save_ours_for_gluoncv(ours, name, str(tmp_path / "ours.params"))
    theirs.load_parameters(str(tmp_path / "ours.params"))
    np.testing.assert_allclose(theirs(X).asnumpy(), ours(X).asnumpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet18_v1", "resnet34_v1d", "resnet50_v1", "resnet50_v1d",
                                  "resnet101_v1b"])
def test_zero_gamma_zeroes_exactly_the_last_bn_of_each_block(name):
    net = get_model(name, zero_gamma=True)
    net.initialize(initializer())
    last = "bn2" if int(name[6:].split("_")[0]) < 50 else "bn3"
    pattern = re.compile(rf"^layer\d\.\d+\.{last}\.gamma$")
    gammas = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()
              if k.endswith("gamma")}
    zeroed = {k for k, g in gammas.items() if pattern.match(k)}
    assert len(zeroed) == len(net.blocks())
    for k, g in gammas.items():
        np.testing.assert_array_equal(g, 0.0 if k in zeroed else 1.0, err_msg=k)


def test_zero_gamma_matches_gluoncv_last_gamma():
    """GluonCV's `last_gamma=True` zeroes the same BatchNorms (bottleneck networks)."""
    ours = get_model("resnet50_v1b", zero_gamma=True)
    ours.initialize(initializer())
    theirs = gluoncv_get_model("resnet50_v1b", pretrained=False, last_gamma=True)
    theirs.initialize()
    theirs(X)

    def zero_names(net):
        return {k for k, p in net._collect_params_with_prefix().items()
                if k.endswith("gamma") and not p.data().asnumpy().any()}
    assert zero_names(ours) == zero_names(theirs)


def test_initialisation_is_the_papers_xavier():
    """Each conv/dense weight ~ U[-a, a], a = sqrt(6 / ((c_in + c_out) k_h k_w)); biases 0;
    BN gamma 1, beta 0."""
    net = get_model("resnet50_v1d", zero_gamma=False)
    net.initialize(initializer())
    weights = 0
    for name, p in net._collect_params_with_prefix().items():
        w = p.data().asnumpy()
        if name.endswith("weight"):
            c_out, c_in = w.shape[:2]
            field = int(np.prod(w.shape[2:]))
            a = np.sqrt(6.0 / ((c_in + c_out) * field))
            assert np.abs(w).max() <= a * (1 + 1e-6), name  # float32 rounding of a
            # E[w^2] = a^2/3 for U[-a, a]; its estimate's relative s.d. is sqrt(0.8 / n)
            rel = np.mean(w.astype(np.float64) ** 2) / (a * a / 3) - 1
            assert abs(rel) < 5 * np.sqrt(0.8 / w.size), (name, rel)
            weights += 1
        elif name.endswith(("bias", "beta", "running_mean")):
            np.testing.assert_array_equal(w, 0.0, err_msg=name)
        elif name.endswith(("gamma", "running_var")):
            np.testing.assert_array_equal(w, 1.0, err_msg=name)
    assert weights == 3 + 16 * 3 + 4 + 1  # stem, blocks, shortcut convs, fc


def test_no_deferred_initialisation():
    """Every parameter has its concrete shape right after initialize (Horovod's broadcast)."""
    net = get_model("resnet18_v1d", classes=CLASSES)
    net.initialize(initializer())
    for name, p in net.collect_params().items():
        assert 0 not in p.shape, name
        p.data()  # raises DeferredInitializationError if deferred


def test_hybridize_and_export(tmp_path):
    net = get_model("resnet18_v1d", classes=CLASSES)
    net.initialize(initializer())
    net.hybridize()
    expected = net(X).asnumpy()
    net.export(str(tmp_path / "net"))
    loaded = mx.gluon.SymbolBlock.imports(str(tmp_path / "net-symbol.json"), ["data"],
                                          str(tmp_path / "net-0000.params"))
    np.testing.assert_allclose(loaded(X).asnumpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,size", [("mobilenet1.0", 224), ("inception_v3", 299)])
def test_zoo_networks(name, size):
    from gluon_tricks.models import input_size
    net = get_model(name, classes=CLASSES)
    net.initialize(initializer())
    assert input_size(name) == size
    assert net(mx.nd.zeros((1, 3, size, size))).shape == (1, CLASSES)
    with pytest.raises(ValueError, match="no"):
        get_model(name, zero_gamma=True)


def test_unknown_name_is_one_line_listing_valid_names():
    with pytest.raises(ValueError) as e:
        get_model("resnet51_v1d")
    msg = str(e.value)
    assert "\n" not in msg and "resnet51_v1d" in msg
    for name in RESNETS + ["mobilenet1.0", "inception_v3"]:
        assert name in msg
