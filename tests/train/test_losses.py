"""Label smoothing, soft cross entropy and distillation against numpy/scipy and GluonCV."""
import mxnet as mx
import numpy as np
import pytest
from gluoncv.loss import DistillationSoftmaxCrossEntropyLoss
from scipy.special import log_softmax, softmax

from gluon_tricks.train.losses import distillation_loss, smooth_labels, soft_cross_entropy
from gluon_tricks.train.optim import make_optimizer

K = 7


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    labels = np.array([0, 3, 6, 3, 1])
    logits = rng.normal(scale=3.0, size=(5, K)).astype(np.float32)
    teacher = rng.normal(scale=3.0, size=(5, K)).astype(np.float32)
    return labels, logits, teacher


def _ce(z, q):
    return -(q * log_softmax(z.astype(np.float64), axis=1)).sum(axis=1)


@pytest.mark.parametrize("label_dtype", ["float32", "int32"])
def test_paper_smoothing(label_dtype):
    labels = np.array([2, 0, 6])
    q = smooth_labels(mx.nd.array(labels, dtype=label_dtype), K, 0.1).asnumpy()
    expected = np.full((3, K), 0.1 / (K - 1))
    expected[np.arange(3), labels] = 0.9
    assert q.dtype == np.float32 and q.shape == (3, K)
    np.testing.assert_allclose(q, expected, rtol=1e-6)
    np.testing.assert_allclose(q.sum(axis=1), 1, rtol=1e-6)


def test_mxnet_smoothing_differs_from_paper_as_stated():
    eps, labels = 0.1, np.array([2, 0, 6])
    paper = smooth_labels(mx.nd.array(labels), K, eps, mode="paper").asnumpy()
    gluoncv = smooth_labels(mx.nd.array(labels), K, eps, mode="gluoncv").asnumpy()
    # GluonCV's train_imagenet.py: one_hot(on=1 - eps + eps/K, off=eps/K)
    expected = mx.nd.one_hot(mx.nd.array(labels), K, on_value=1 - eps + eps / K,
                             off_value=eps / K).asnumpy()
    np.testing.assert_allclose(gluoncv, expected, rtol=1e-6)
    true = np.zeros((3, K), bool)
    true[np.arange(3), labels] = True
    np.testing.assert_allclose((gluoncv - paper)[true], eps / K, rtol=1e-5)
    np.testing.assert_allclose((paper - gluoncv)[~true], eps / (K - 1) - eps / K, rtol=1e-5)
    np.testing.assert_allclose(gluoncv.sum(axis=1), 1, rtol=1e-6)


def test_zero_eps_is_one_hot():
    labels = np.array([4, 1])
    for mode in ("paper", "gluoncv"):
        q = smooth_labels(mx.nd.array(labels), K, 0.0, mode=mode).asnumpy()
        np.testing.assert_array_equal(q, np.eye(K)[labels])


def test_unknown_smoothing_mode():
    with pytest.raises(ValueError):
        smooth_labels(mx.nd.array([1]), K, 0.1, mode="tf")


def test_soft_cross_entropy_matches_numpy(batch):
    labels, logits, _ = batch
    q = np.full((5, K), 0.1 / (K - 1))
    q[np.arange(5), labels] = 0.9
    loss = soft_cross_entropy(mx.nd.array(logits), mx.nd.array(q)).asnumpy()
    assert loss.shape == (5,) and loss.dtype == np.float32
    np.testing.assert_allclose(loss, _ce(logits, q), rtol=1e-5)


def test_soft_cross_entropy_float16_logits_do_not_overflow():
    z = np.array([[30000.0, -30000.0, 0.0], [11.0, 12.0, 13.0]], dtype=np.float16)
    q = np.array([[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]], dtype=np.float32)
    loss = soft_cross_entropy(mx.nd.array(z, dtype="float16"), mx.nd.array(q)).asnumpy()
    assert loss.dtype == np.float32 and np.all(np.isfinite(loss))
    np.testing.assert_allclose(loss, _ce(z.astype(np.float64), q), rtol=1e-5)


def test_distillation_is_eq6(batch):
    labels, z, r = batch
    T = 20.0
    p = np.eye(K)[labels]
    loss = distillation_loss(mx.nd.array(z), mx.nd.array(r), mx.nd.array(p), T).asnumpy()
    expected = _ce(z, p) + T ** 2 * _ce(z / T, softmax(r.astype(np.float64) / T, axis=1))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_distillation_is_twice_gluoncv_at_hard_weight_half(batch):
    labels, z, r = batch
    T = 4.0
    p = np.eye(K)[labels]
    ours = distillation_loss(mx.nd.array(z), mx.nd.array(r), mx.nd.array(p), T).asnumpy()
    theirs = DistillationSoftmaxCrossEntropyLoss(temperature=T, hard_weight=0.5,
                                                 sparse_label=False)
    # GluonCV's train_imagenet.py feeds it softmax(teacher logits / T)
    g = theirs(mx.nd.array(z), mx.nd.array(p), mx.nd.softmax(mx.nd.array(r) / T)).asnumpy()
    np.testing.assert_allclose(ours, 2 * g, rtol=1e-5)


def test_distillation_gradient_reaches_only_the_student(batch):
    labels, z, r = batch
    T = 3.0
    p = np.eye(K)[labels]
    student, teacher = mx.nd.array(z), mx.nd.array(r)
    student.attach_grad()
    teacher.attach_grad()
    with mx.autograd.record():
        loss = distillation_loss(student, teacher, mx.nd.array(p), T)
    loss.backward()
    # d/dz [CE(p, softmax z) + T^2 CE(q, softmax(z/T))] = softmax(z) - p + T (softmax(z/T) - q)
    q = softmax(r.astype(np.float64) / T, axis=1)
    expected = softmax(z.astype(np.float64), axis=1) - p + T * (softmax(z / T, axis=1) - q)
    np.testing.assert_allclose(student.grad.asnumpy(), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(teacher.grad.asnumpy(), 0)


@pytest.mark.parametrize("w", [0.0, 0.3, 0.5, 1.0])
def test_hard_weight_is_gluoncvs_distillation_loss(batch, w):
    """``hard_weight: w`` computes GluonCV's DistillationSoftmaxCrossEntropyLoss(hard_weight=w)
    as its train_imagenet.py calls it (soft target softmax(teacher logits / T))."""
    labels, z, r = batch
    T = 20.0
    p = np.eye(K)[labels] * 0.9 + 0.1 / K  # any dense target, e.g. smoothed
    ours = distillation_loss(mx.nd.array(z), mx.nd.array(r), mx.nd.array(p), T,
                             hard_weight=w).asnumpy()
    theirs = DistillationSoftmaxCrossEntropyLoss(temperature=T, hard_weight=w,
                                                 sparse_label=False)
    g = theirs(mx.nd.array(z), mx.nd.array(p), mx.nd.softmax(mx.nd.array(r) / T)).asnumpy()
    np.testing.assert_allclose(ours, g, rtol=1e-5, atol=1e-6)


def _nag_steps(batch, hard_weight, lr, wd, steps=3):
    """A linear student after ``steps`` NAG updates on the distillation loss (one batch)."""
    labels, x, r = batch
    mx.random.seed(0)
    net = mx.gluon.nn.Dense(K, in_units=K)
    net.initialize(mx.init.Xavier())
    trainer = mx.gluon.Trainer(net.collect_params(), make_optimizer(lr, momentum=0.9, wd=wd))
    p = mx.nd.array(np.eye(K)[labels])
    for _ in range(steps):
        with mx.autograd.record():
            loss = distillation_loss(net(mx.nd.array(x)), mx.nd.array(r), p, 4.0, hard_weight)
        loss.backward()
        trainer.step(len(labels))
    return net.weight.data().asnumpy()


def test_gluoncv_weighting_is_eq6_at_half_the_lr_and_double_the_wd(batch):
    """GluonCV's loss at w = 0.5 is half of Eq. 6, so with weight decay in the update
    (NAG adds wd * weight to the gradient) GluonCV's run at (lr, wd) is ours at
    (lr / 2, 2 wd), not at (lr / 2, wd)."""
    gluoncv = _nag_steps(batch, 0.5, lr=0.2, wd=0.05)
    np.testing.assert_allclose(_nag_steps(batch, None, lr=0.1, wd=0.1), gluoncv, rtol=1e-5,
                               atol=1e-6)
    assert np.abs(_nag_steps(batch, None, lr=0.1, wd=0.05) - gluoncv).max() > 1e-3
