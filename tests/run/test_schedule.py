"""The learning-rate schedule against the paper's closed forms (§2.1, §3.1, §5.1) and
GluonCV's step scheduler."""
import math

import numpy as np
import pytest
from gluoncv.utils import LRScheduler as GluonCVScheduler

from gluon_tricks.paper import IMAGENET_TRAIN_IMAGES
from gluon_tricks.run.recipe import ConfigError
from gluon_tricks.run.schedule import LRSchedule, scaled_lr
from gluon_tricks.train import config as train_config
from gluon_tricks.transfer import config as transfer_config

BPE = 10  # batches per epoch of the small schedules


def test_linear_scaling_rule():
    assert scaled_lr(0.1, 256) == pytest.approx(0.1)
    assert scaled_lr(0.1, 1024) == pytest.approx(0.4)
    assert scaled_lr(0.1, 64) == pytest.approx(0.025)
    # the rate the trainer starts its schedule from
    cfg = train_config.resolve(None, [("batch_size", 1024), ("base_lr_per_256", 0.1)])
    assert cfg.peak_lr() == pytest.approx(0.4)
    assert train_config.schedule_of(cfg, 10).peak_lr == pytest.approx(0.4)


@pytest.mark.parametrize("resolve", [train_config.resolve, transfer_config.resolve],
                         ids=["classification", "transfer"])
def test_both_trainers_take_step_epochs_positive_and_increasing(resolve):
    assert resolve(None, [("lr_step_epochs", [2, 5])]).lr_step_epochs == [2, 5]
    for wrong in ([5, 2], [3, 3], [0, 4]):
        with pytest.raises(ConfigError) as refused:
            resolve(None, [("lr_step_epochs", wrong)])
        assert str(refused.value) == (f"--set lr_step_epochs: lr_step_epochs must be positive "
                                      f"and increasing, got {wrong}")


def test_warmup_is_i_eta_over_m():
    s = LRSchedule(peak_lr=0.4, batches_per_epoch=BPE, epochs=20, warmup_epochs=5,
                   mode="step", step_epochs=(10,))
    m = 5 * BPE
    assert s.warmup_batches == m and s.total_batches == 20 * BPE
    assert s.lr(1) == pytest.approx(0.4 / m)
    for i in (1, 7, 23, m):
        assert s.lr(i) == pytest.approx(i * 0.4 / m)
    assert s.lr(m) == pytest.approx(0.4)
    assert s.lr(m + 1) == pytest.approx(0.4)
    assert np.all(np.diff(s.lrs()[:m]) > 0)


def test_step_decay_starts_at_first_batch_of_epoch():
    s = LRSchedule(peak_lr=0.1, batches_per_epoch=BPE, epochs=120)
    assert s.lr(1) == pytest.approx(0.1)
    for e, expected in ((30, 0.01), (60, 0.001), (90, 0.0001)):
        # last batch of (0-based) epoch e - 1 still at the old rate, first of epoch e decayed
        assert s.lr(e * BPE) == pytest.approx(expected * 10)
        assert s.lr(e * BPE + 1) == pytest.approx(expected)
        assert s.epoch_of(e * BPE + 1) == e
    assert s.lr(s.total_batches) == pytest.approx(1e-4)
    assert np.all(np.diff(s.lrs()) <= 0)
    assert len(np.unique(np.round(s.lrs(), 12))) == 4


def test_step_decay_matches_gluoncv_with_its_zero_based_batch():
    """GluonCV's scheduler decays at 0-based batch e * iters_per_epoch: our batch i is its i - 1."""
    s = LRSchedule(peak_lr=0.1, batches_per_epoch=BPE, epochs=120)
    theirs = GluonCVScheduler("step", base_lr=0.1, nepochs=120, iters_per_epoch=BPE,
                              step_epoch=[30, 60, 90], step_factor=0.1)
    expected = [theirs(i - 1) for i in range(1, s.total_batches + 1)]
    np.testing.assert_allclose(s.lrs(), expected, rtol=1e-12)


def test_poly_decay_matches_gluoncv_with_its_zero_based_batch():
    """Table 9's FCN schedule: GluonCV's poly (power 0.9) at 0-based batch i - 1."""
    s = LRSchedule(peak_lr=0.01, batches_per_epoch=BPE, epochs=3, mode="poly", power=0.9)
    theirs = GluonCVScheduler("poly", base_lr=0.01, nepochs=3, iters_per_epoch=BPE, power=0.9)
    expected = [theirs(i - 1) for i in range(1, s.total_batches + 1)]
    np.testing.assert_allclose(s.lrs(), expected, rtol=1e-12, atol=1e-18)
    T = s.total_batches
    assert s.lr(1) == 0.01 and s.lr(T) == 0.0
    assert s.lr(T // 2 + 1) == pytest.approx(0.01 * (1 - (T // 2) / (T - 1)) ** 0.9)


def test_cosine_closed_form():
    bpe = 8  # T = 115 * 8 is divisible by 4
    eta, m, total = 0.4, 5 * bpe, 120 * bpe
    s = LRSchedule(peak_lr=eta, batches_per_epoch=bpe, epochs=120, warmup_epochs=5,
                   mode="cosine")
    T = total - m
    assert s.lr(m) == pytest.approx(eta)
    assert s.lr(m + T // 2) == pytest.approx(eta / 2)  # cos(pi/2) = 0
    assert s.lr(m + T // 4) == pytest.approx(eta * (1 + math.sqrt(0.5)) / 2)
    assert s.lr(m + 1) == pytest.approx(0.5 * (1 + math.cos(math.pi / T)) * eta)
    assert s.lr(total) == pytest.approx(0.0, abs=1e-15)
    assert np.all(np.diff(s.lrs()[m:]) < 0)


def test_cosine_without_warmup():
    s = LRSchedule(peak_lr=1.0, batches_per_epoch=4, epochs=3, mode="cosine")
    T = 12
    for i in range(1, T + 1):
        assert s.lr(i) == pytest.approx(0.5 * (1 + math.cos(i * math.pi / T)))


def test_lrs_equals_lr_per_batch_and_epoch_axis():
    s = LRSchedule(peak_lr=0.4, batches_per_epoch=7, epochs=9, warmup_epochs=2, mode="step",
                   step_epochs=(3, 6))
    np.testing.assert_allclose(s.lrs(), [s.lr(i) for i in range(1, s.total_batches + 1)])
    assert s.epoch_of(1) == 0 and s.epoch_of(8) == 1


def test_imagenet_batch_1024_reaches_peak_after_5_epochs():
    bpe = IMAGENET_TRAIN_IMAGES // 1024
    assert bpe == 1251
    for mode in ("step", "cosine"):
        s = LRSchedule(peak_lr=scaled_lr(0.1, 1024), batches_per_epoch=bpe, epochs=120,
                       warmup_epochs=5, mode=mode)
        lrs = s.lrs()
        assert lrs.shape == (120 * 1251,)
        assert s.warmup_batches == 5 * 1251
        assert lrs.argmax() == 5 * 1251 - 1  # batch i = 5 * 1251 (1-based)
        assert lrs.max() == pytest.approx(0.4)


@pytest.mark.parametrize("kwargs", [dict(mode="exp"), dict(warmup_epochs=10),
                                    dict(batches_per_epoch=0)])
def test_bad_schedules_are_refused(kwargs):
    args = dict(peak_lr=0.1, batches_per_epoch=5, epochs=10) | kwargs
    with pytest.raises(ValueError):
        LRSchedule(**args)


def test_batch_outside_the_run_is_refused():
    s = LRSchedule(peak_lr=0.1, batches_per_epoch=5, epochs=2)
    with pytest.raises(ValueError):
        s.lr(0)
    with pytest.raises(ValueError):
        s.lr(11)


@pytest.mark.parametrize("mode", ["step", "cosine", "poly"])
@pytest.mark.parametrize("warmup,batches,epochs", [(5, 7, 30), (0, 5, 12), (2, 3, 9)])
def test_gluoncv_formulas_are_lrsequential_at_mxnets_update_count(mode, warmup, batches,
                                                                  epochs):
    """formulas="gluoncv" is train_imagenet.py's LRSequential(linear warmup from 0, then the
    mode's LRScheduler over the rest, decay epochs shifted by the warmup), called as MXNet's
    optimizer calls it: with the 1-based num_update of every update of the run."""
    from gluoncv.utils import LRSequential
    steps = (epochs // 3, 2 * epochs // 3)
    ours = LRSchedule(peak_lr=0.4, batches_per_epoch=batches, epochs=epochs,
                      warmup_epochs=warmup, mode=mode, step_epochs=steps, power=2,
                      formulas="gluoncv")
    theirs = LRSequential([
        GluonCVScheduler("linear", base_lr=0, target_lr=0.4, nepochs=warmup,
                         iters_per_epoch=batches),
        GluonCVScheduler(mode, base_lr=0.4, target_lr=0, nepochs=epochs - warmup,
                         iters_per_epoch=batches, step_epoch=[e - warmup for e in steps],
                         step_factor=0.1, power=2)])
    expected = [theirs(i) for i in range(1, ours.total_batches + 1)]
    np.testing.assert_allclose(ours.lrs(), expected, rtol=1e-12, atol=1e-15)


def test_paper_and_gluoncv_formulas_differ_as_documented():
    """docs/notes.md §3 at ImageNet batch 1024: warmup update i at eta i / m against
    eta i / (m - 1); the step decay one update earlier; the last two cosine updates at 0."""
    bpe = IMAGENET_TRAIN_IMAGES // 1024
    kw = dict(peak_lr=0.4, batches_per_epoch=bpe, epochs=120, warmup_epochs=5)
    m = 5 * bpe
    paper, gluoncv = (LRSchedule(**kw, mode="step", formulas=f) for f in ("paper", "gluoncv"))
    assert paper.lr(50) == pytest.approx(0.4 * 50 / m)
    assert gluoncv.lr(50) == pytest.approx(0.4 * 50 / (m - 1))
    assert gluoncv.lr(m - 1) == pytest.approx(0.4) and paper.lr(m) == pytest.approx(0.4)
    assert gluoncv.lr(30 * bpe) == pytest.approx(0.04) and paper.lr(30 * bpe) == pytest.approx(0.4)
    assert paper.lr(30 * bpe + 1) == pytest.approx(0.04)
    cosine = LRSchedule(**kw, mode="cosine", formulas="gluoncv")
    n = cosine.total_batches
    assert cosine.lr(n) == cosine.lr(n - 1) == 0.0 < cosine.lr(n - 2)
