"""Mixup (§5.4) against a numpy reference and the Beta distribution (scipy)."""
import mxnet as mx
import numpy as np
import pytest
from scipy import stats

from gluon_tricks.train.config import TrainConfig
from gluon_tricks.train.mixup import mixer_of, mixup, sample_lambda


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


def test_mixup_draws_are_todays_stream():
    """The mixup mixer draws one Beta(alpha, alpha) per batch from the epoch's generator,
    nothing else: the draws GluonCV's script's equivalence relies on."""
    mixer = mixer_of(TrainConfig(mixup_alpha=0.2))
    rng, reference = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(50):
        mix = mixer.sample(rng)
        assert mix.func is mixup and mix.keywords["lam"] == reference.beta(0.2, 0.2)
