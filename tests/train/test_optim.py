"""MXNet's NAG through gluon.Trainer against a numpy replay of its kernel
(src/operator/optimizer_op-inl.h, NAGMomKernel / MP_NAGMomKernel), no bias decay, and the
FP32 master copy of FP16 weights (§3.2)."""
import re
import warnings

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from gluon_tricks.train.optim import make_optimizer, set_no_bias_decay

MU = 0.9


def nag_reference(w, m, g, lr, wd, rescale=1.0, mu=MU):
    """MXNet 1.9's nag_mom_update applied in place (out == weight), in float64."""
    m1 = mu * m
    w_new = w - m1 + (mu + 1) * (m1 - lr * (rescale * g + wd * w))
    m_new = m1 - lr * (rescale * g + wd * w_new)
    return w_new, m_new


def test_nag_two_steps_match_the_kernel_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    c = rng.normal(size=(5, 3))
    net = nn.Dense(3, in_units=4)
    net.initialize(mx.init.Xavier())
    net.bias.set_data(mx.nd.array(rng.normal(size=3)))
    trainer = gluon.Trainer(net.collect_params(), make_optimizer(0.1, momentum=MU, wd=0.01))
    # loss = sum(c * (x W^T + b)): dW = c^T x, db = sum_n c, constant over steps
    grads = {"weight": c.T @ x, "bias": c.sum(axis=0)}
    ref = {k: getattr(net, k).data().asnumpy().astype(np.float64) for k in grads}
    mom = {k: np.zeros_like(v) for k, v in ref.items()}
    for lr in (0.1, 0.03):  # a changed lr exercises the lr held inside the momentum
        trainer.set_learning_rate(lr)
        with autograd.record():
            loss = (net(mx.nd.array(x)) * mx.nd.array(c)).sum()
        loss.backward()
        trainer.step(5)
        for k in grads:
            ref[k], mom[k] = nag_reference(ref[k], mom[k], grads[k], lr, 0.01, rescale=1 / 5)
            np.testing.assert_allclose(getattr(net, k).data().asnumpy(), ref[k], rtol=1e-5,
                                       atol=1e-7)


def _net():
    net = nn.HybridSequential()
    # a prefix containing "beta": GluonCV's regex .*beta|.*gamma|.*bias would exempt
    # this conv weight from decay; decided by role, it keeps its decay
    net.add(nn.Conv2D(4, 3, in_channels=2, prefix="beta_conv_"),
            nn.BatchNorm(in_channels=4),
            nn.GlobalAvgPool2D(),
            nn.Dense(2, in_units=4))
    net.initialize(mx.init.Uniform(1.0))
    for p in net.collect_params().values():
        if p.grad_req != "null":
            p.set_data(mx.nd.random.uniform(0.5, 1.5, shape=p.shape))
    return net


def test_no_bias_decay_by_role():
    net = _net()
    conv, bn, dense = net[0], net[1], net[3]
    off = set_no_bias_decay(net)
    assert off == sorted([conv.bias.name, bn.gamma.name, bn.beta.name, dense.bias.name])
    assert conv.weight.wd_mult == 1 and dense.weight.wd_mult == 1
    assert re.match(".*beta|.*gamma|.*bias", conv.weight.name)  # GluonCV's --no-wd would

    before = {p.name: p.data().asnumpy() for p in net.collect_params().values()
              if p.grad_req != "null"}
    lr, wd = 0.1, 0.5
    trainer = gluon.Trainer(net.collect_params(), make_optimizer(lr, momentum=MU, wd=wd))
    with autograd.record():
        loss = 0 * net(mx.nd.ones((2, 2, 5, 5))).sum()  # zero gradients: only decay moves
    loss.backward()
    trainer.step(2)
    for name, w in before.items():
        after = net.collect_params()[name].data().asnumpy()
        if name in off:
            np.testing.assert_array_equal(after, w)
        else:  # first NAG step on a zero gradient: w - (1 + mu) lr wd w
            np.testing.assert_allclose(after, w * (1 - (1 + MU) * lr * wd), rtol=1e-6)


def test_no_bias_decay_on_parameters_by_name():
    net = _net()
    by_role = set_no_bias_decay(net)
    other = _net()
    by_name = set_no_bias_decay(other.collect_params())
    assert len(by_name) == len(by_role) == 4
    assert all(n.rsplit("_", 1)[-1] in ("bias", "gamma", "beta") for n in by_name)


def _fp16_run(multi_precision, grads, lr, wd):
    p = gluon.Parameter("w", shape=grads.shape[1:], dtype="float16")
    p.initialize(mx.init.One())
    trainer = gluon.Trainer([p], make_optimizer(lr, momentum=MU, wd=wd,
                                                multi_precision=multi_precision))
    for g in grads:
        with autograd.record():  # elementwise only: CPU MXNet has no FP16 GEMM
            loss = (p.data() * mx.nd.array(g, dtype="float16")).sum()
        loss.backward()
        trainer.step(1)
    # the optimizer's state for the parameter: (float32 momentum, float32 master) with mp
    return p.data().asnumpy(), trainer._updaters[0].states[0]


def test_multi_precision_keeps_an_fp32_master_copy():
    rng = np.random.default_rng(3)
    grads = rng.uniform(0.01, 0.05, size=(8, 6)).astype(np.float16)
    lr, wd = 1e-3, 1e-4  # updates ~1e-4, below half an FP16 ulp at 1.0 (2**-11)
    w16, (mom, master) = _fp16_run(True, grads, lr, wd)
    assert master.dtype == np.float32 and mom.dtype == np.float32 and w16.dtype == np.float16

    w, m = np.ones(6, np.float32), np.zeros(6, np.float32)
    for g in grads.astype(np.float32):  # the MP kernel computes in float32
        w, m = nag_reference(w, m, g, np.float32(lr), np.float32(wd), mu=np.float32(MU))
    np.testing.assert_allclose(master.asnumpy(), w, rtol=1e-6)
    np.testing.assert_array_equal(w16, w.astype(np.float16))  # the rounded master copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MXNet warns against exactly this
        w16_plain, _ = _fp16_run(False, grads, lr, wd)
    # without the master copy the small updates are lost to FP16 rounding
    assert np.abs(w16_plain.astype(np.float32) - w).max() > \
        np.abs(w16.astype(np.float32) - w).max()
