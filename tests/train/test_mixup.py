"""Batch mixing against numpy references and the distributions (scipy): mixup (§5.4) and
CutMix (timm's box and label weight)."""
from functools import partial

import mxnet as mx
import numpy as np
import pytest
from scipy import stats

from gluon_tricks.data.shards import split_batch
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.run.recipe import ConfigError
from gluon_tricks.train.config import TrainConfig, resolve
from gluon_tricks.train.mixup import CutMix, cutmix, cutmix_box, mixer_of, mixup, sample_lambda
from gluon_tricks.train.optim import make_optimizer
from gluon_tricks.train.step import step_of


@pytest.fixture
def batch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3, 4, 4)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[[1, 4, 4, 9, 0]] * 0.9 + 0.01
    return x, y


def test_reverse_pairing_is_gluoncv_batch_reversal(batch):
    x, y = batch
    lam = 0.3
    xm, ym = mixup(mx.nd.array(x), mx.nd.array(y), lam)
    np.testing.assert_allclose(xm.asnumpy(), lam * x + (1 - lam) * x[::-1], rtol=1e-6)
    np.testing.assert_allclose(ym.asnumpy(), lam * y + (1 - lam) * y[::-1], rtol=1e-6)
    assert xm.shape == x.shape and ym.shape == y.shape
    np.testing.assert_allclose(ym.asnumpy().sum(axis=1), 1, rtol=1e-6)


def test_lambda_is_beta_02_02():
    rng = np.random.default_rng(2019)
    draws = np.array([sample_lambda(0.2, rng) for _ in range(5000)])
    assert np.all((draws >= 0) & (draws <= 1))
    assert stats.kstest(draws, stats.beta(0.2, 0.2).cdf).pvalue > 0.01
    with pytest.raises(ValueError):
        sample_lambda(0.0, rng)


def timm_box(lam, cy, cx, h, w):
    """timm's ``rand_bbox`` and ``cutmix_bbox_and_lam`` (timm/data/mixup.py) for a given
    centre pixel (cy, cx): the clipped box and the label weight from its area."""
    ratio = np.sqrt(1 - lam)
    cut_h, cut_w = int(h * ratio), int(w * ratio)
    yl, yh = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
    xl, xh = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
    return (yl, yh, xl, xh), 1.0 - (yh - yl) * (xh - xl) / float(h * w)


# (lam, centre fractions, H, W): inside, clipped at each border, odd sides, empty, whole
CUTS = [(0.3, (0.5, 0.5), 8, 8), (0.5, (0.0, 0.0), 8, 8), (0.2, (0.99, 0.99), 8, 8),
        (0.1, (0.0, 0.9), 7, 9), (0.64, (0.4, 0.05), 9, 7), (1.0, (0.5, 0.5), 8, 8),
        (0.0, (0.5, 0.5), 8, 8), (0.0, (0.3, 0.7), 7, 5), (0.97, (0.5, 0.5), 8, 8)]


@pytest.mark.parametrize("lam, centre, h, w", CUTS)
def test_cutmix_box_and_label_weight_are_timms(lam, centre, h, w):
    """The box pasted from the reversed batch and the label weight are timm's for the
    centre pixel the fractions name; the weight is 1 - the share of pixels that really
    changed (every pixel differs from its reversed partner here)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 3, h, w)).astype(np.float32)
    x[2] = rng.normal(size=(3, h, w)) + 10  # the middle one is its own partner: mark it
    y = np.eye(6, dtype=np.float32)[[0, 1, 2, 3, 5]] * 0.88 + 0.02
    (yl, yh, xl, xh), weight = timm_box(lam, int(centre[0] * h), int(centre[1] * w), h, w)
    assert cutmix_box(lam, centre, h, w) == ((yl, yh, xl, xh), pytest.approx(weight))
    xm, ym = cutmix(mx.nd.array(x), mx.nd.array(y), lam, centre)
    expected = x.copy()
    expected[:, :, yl:yh, xl:xh] = x[::-1][:, :, yl:yh, xl:xh]
    np.testing.assert_array_equal(xm.asnumpy(), expected)
    changed = (xm.asnumpy()[0] != x[0]).any(axis=0).mean()
    assert 1 - changed == pytest.approx(weight)
    np.testing.assert_allclose(ym.asnumpy(), weight * y + (1 - weight) * y[::-1], rtol=1e-6)
    np.testing.assert_allclose(ym.asnumpy().sum(axis=1), 1, rtol=1e-6)


def test_cutmix_draws_lambda_from_beta_and_a_centre_uniform_over_the_pixels():
    rng = np.random.default_rng(2019)
    mixes = [CutMix(1.0).sample(rng) for _ in range(7000)]
    assert all(m.func is cutmix for m in mixes)
    lams = np.array([m.keywords["lam"] for m in mixes])
    assert stats.kstest(lams, stats.beta(1.0, 1.0).cdf).pvalue > 0.01
    # at lam = 1 - 0.29^2 the box spans 2 pixels before clipping (centre - 1 to centre + 1)
    # on sides of 7 and 10, so that its end is always the centre pixel + 1
    boxes = np.array([cutmix_box(1 - 0.29 ** 2, m.keywords["centre"], 7, 10)[0]
                      for m in mixes])
    for end, side in ((boxes[:, 1], 7), (boxes[:, 3], 10)):
        counts = np.bincount(end - 1, minlength=side)
        assert len(counts) == side and stats.chisquare(counts).pvalue > 0.01, counts


def test_mixup_draws_are_todays_stream():
    """The mixup mixer draws one Beta(alpha, alpha) per batch from the epoch's generator,
    nothing else: the draws GluonCV's script's equivalence relies on."""
    mixer = mixer_of(TrainConfig(mixup_alpha=0.2))
    rng, reference = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(50):
        mix = mixer.sample(rng)
        assert mix.func is mixup and mix.keywords["lam"] == reference.beta(0.2, 0.2)


def test_switch_uses_cutmix_on_its_share_of_batches():
    mixer = mixer_of(TrainConfig(mixup_alpha=0.2, cutmix_alpha=1.0, mix_switch_prob=0.3))
    rng = np.random.default_rng(5)
    chosen = [mixer.sample(rng).func for _ in range(4000)]
    assert set(chosen) == {mixup, cutmix}
    assert stats.binomtest(chosen.count(cutmix), 4000, 0.3).pvalue > 0.01
    assert type(mixer_of(TrainConfig(cutmix_alpha=1.0))) is CutMix
    assert mixer_of(TrainConfig()) is None


def test_cutmix_runs_on_each_device_within_its_share():
    """The logits the step returns (before its update) are those of each device's share
    cut-mixed with itself reversed, the same box on both: a numpy reference through a
    linear layer."""
    two = [mx.cpu(0), mx.cpu(1)]
    net = mx.gluon.nn.Dense(5, in_units=48)
    net.initialize(mx.init.Xavier(), ctx=two)
    w, b = net.weight.list_data()[0].asnumpy(), net.bias.list_data()[0].asnumpy()
    trainer = SingleProcess().trainer(net.collect_params(), make_optimizer(0.1), 2)
    x = np.random.default_rng(3).normal(size=(8, 3, 4, 4)).astype(np.float32)
    step = step_of(TrainConfig(classes=5), net, trainer, two)
    _, outputs = step(*split_batch(mx.nd.array(x), mx.nd.arange(8) % 5, two),
                      partial(cutmix, lam=0.5, centre=(0.1, 0.6)))
    (yl, yh, xl, xh), _ = timm_box(0.5, 0, 2, 4, 4)
    for z, share in zip(outputs, (x[:4], x[4:])):
        mixed = share.copy()
        mixed[:, :, yl:yh, xl:xh] = share[::-1][:, :, yl:yh, xl:xh]
        np.testing.assert_allclose(z.asnumpy(), mixed.reshape(4, -1) @ w.T + b, rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("values, words", [
    (dict(cutmix_alpha=-1.0), ["cutmix_alpha"]),
    (dict(mixup_alpha=0.2, cutmix_alpha=1.0), ["mix_switch_prob"]),
    (dict(mixup_alpha=0.2, cutmix_alpha=1.0, mix_switch_prob=1.0), ["mix_switch_prob"]),
    (dict(cutmix_alpha=1.0, mix_switch_prob=0.0), ["mix_switch_prob"])])
def test_mixing_keys_are_checked_in_one_line(values, words):
    with pytest.raises(ConfigError) as e:
        resolve(None, list(values.items()))
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words)
