"""FP16 loss scaling (§3.2): overflow detection over devices and dtypes, the dynamic
scale's halving and growth, checkpoint state, and the loop's contract with gluon.Trainer."""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_tricks.train.loss_scale import DynamicLossScaler, StaticLossScaler, all_finite

CONTEXTS = [mx.cpu(0), mx.cpu(1)]


def _params(dtype="float32"):
    """Two parameters, each with a zero gradient on two devices."""
    params = []
    for name, shape in (("w", (3, 4)), ("b", (3,))):
        p = gluon.Parameter(name, shape=shape, dtype=dtype)
        p.initialize(mx.init.One(), ctx=CONTEXTS)
        params.append(p)
    return params


def test_all_finite_over_dtypes_and_devices():
    a16 = mx.nd.ones((4,), dtype="float16")
    a32 = mx.nd.ones((2, 2), ctx=mx.cpu(1))
    assert all_finite([a16, a32])
    assert not all_finite([a16, mx.nd.array([1.0, np.nan], ctx=mx.cpu(1))])
    assert not all_finite([mx.nd.array([np.inf], dtype="float16"), a32])
    assert not all_finite([mx.nd.array([-np.inf])])
    assert all_finite([])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_host_check_and_the_device_kernel_agree(bad, dtype):
    """The epoch-end path (numpy on CPU arrays) and the kernel path (MXNet's
    multi_all_finite, what GPUs and the per-step overflow verdict run) give one verdict over
    270 arrays, more than one kernel call takes (its chunk of 200), with the bad element in
    the last one (the second call's)."""
    rng = np.random.default_rng(0)
    arrays = [mx.nd.array(rng.standard_normal(n), dtype=dtype) for n in (7, 1000, 3)] * 90
    if bad is not None:
        arrays[-1] = mx.nd.array([0.5, bad, 2.0], dtype=dtype)
    assert all_finite(arrays, cpu_on_host=True) == all_finite(arrays) == (bad is None)


def test_overflow_on_one_device_is_seen_halves_and_skips():
    params = _params()
    scaler = DynamicLossScaler(init_scale=2.0 ** 10)
    assert not scaler.has_overflow(params)
    params[1].list_grad()[1][:] = np.inf  # only the second device's copy
    overflow = scaler.has_overflow(params)
    assert overflow
    assert scaler.update(overflow) is True  # skip
    assert scaler.scale == 2.0 ** 9


def test_frozen_parameters_are_not_checked():
    params = _params()
    params[0].list_grad()[0][:] = np.nan
    params[0].grad_req = "null"  # e.g. a frozen teacher's weights
    assert not StaticLossScaler(128).has_overflow(params)


def test_dynamic_scale_grows_after_interval_and_respects_bounds():
    scaler = DynamicLossScaler(init_scale=8, growth_interval=3, min_scale=2, max_scale=32)
    assert [scaler.update(False) for _ in range(2)] == [False, False]
    assert scaler.scale == 8
    scaler.update(False)
    assert scaler.scale == 16
    scaler.update(False), scaler.update(False)
    scaler.update(True)  # an overflow restarts the count of clean steps
    assert scaler.scale == 8
    scaler.update(False), scaler.update(False)
    assert scaler.scale == 8
    for _ in range(9):
        scaler.update(False)
    assert scaler.scale == 32  # capped
    for _ in range(5):
        scaler.update(True)
    assert scaler.scale == 2  # floored


def test_static_scale_never_changes():
    scaler = StaticLossScaler(128)
    assert scaler.update(True) is True and scaler.update(False) is False
    for _ in range(5000):
        scaler.update(False)
    assert scaler.scale == 128.0


def test_state_round_trips_through_json():
    scaler = DynamicLossScaler(init_scale=2.0 ** 16, growth_interval=4)
    for overflow in (True, False, False):
        scaler.update(overflow)
    state = json.loads(json.dumps(scaler.state_dict()))
    restored = DynamicLossScaler(growth_interval=4)
    restored.load_state_dict(state)
    assert restored.state_dict() == scaler.state_dict() == {"scale": 2.0 ** 15,
                                                            "clean_steps": 2}
    restored.update(False), restored.update(False)
    assert restored.scale == 2.0 ** 16  # it remembered the two clean steps
    static = StaticLossScaler(64)
    other = StaticLossScaler(1)
    other.load_state_dict(json.loads(json.dumps(static.state_dict())))
    assert other.scale == 64


@pytest.mark.parametrize("bad", [dict(backoff=1.5), dict(growth_factor=1.0),
                                 dict(init_scale=0.5, min_scale=1)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        DynamicLossScaler(**bad)


def test_scaled_backward_with_step_of_batch_times_scale_is_the_unscaled_update():
    """The loop's contract: backward(loss * S) then trainer.update(N * S) moves the
    weights exactly as backward(loss) then trainer.update(N) (S a power of two)."""
    rng = np.random.default_rng(0)
    x = mx.nd.array(rng.normal(size=(6, 4)))
    y = mx.nd.array(rng.normal(size=(6, 3)))
    weights = []
    for scale in (1.0, 2.0 ** 12):
        net = gluon.nn.Dense(3, in_units=4)
        net.initialize(mx.init.Constant(0.5))
        trainer = gluon.Trainer(net.collect_params(), "nag",
                                {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4})
        with autograd.record():
            scaled = ((net(x) - y) ** 2).sum(axis=1) * scale
        autograd.backward(scaled)
        trainer.allreduce_grads()
        trainer.update(x.shape[0] * scale)
        weights.append(net.weight.data().asnumpy())
    np.testing.assert_allclose(weights[1], weights[0], rtol=1e-6)


def test_train_step_counts_skipped_updates_and_stops_a_diverged_run():
    """The loss-scaling path of TrainStep on CPU (FP32 stands in for FP16: the logic does
    not depend on the dtype). A batch with a NaN overflows every step: each is counted and
    leaves the weights alone; the dynamic scale halves to its floor of 1, and after
    COLLAPSED_STEPS overflowing steps there the run stops with one line."""
    from gluon_tricks.errors import RunError
    from gluon_tricks.train import step as loop
    from gluon_tricks.train.step import StepSettings

    net = mx.gluon.nn.Dense(3, in_units=4)
    net.initialize(mx.init.Constant(0.1))
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    scaler = DynamicLossScaler(init_scale=8.0)
    step = loop.TrainStep(StepSettings(classes=3), net, trainer,
                          [mx.cpu()], scaler=scaler)
    good = [mx.nd.ones((2, 4))]
    bad = [mx.nd.array([[float("nan")] * 4, [1.0] * 4])]
    label = [mx.nd.array([0, 1])]
    step(good, label)
    assert step.skipped == 0
    before = net.weight.data().asnumpy().copy()
    for _ in range(3):
        step(bad, label)
    assert step.skipped == 3 and scaler.scale == 1.0
    np.testing.assert_array_equal(net.weight.data().asnumpy(), before)
    with pytest.raises(RunError, match="diverged"):
        for _ in range(loop.COLLAPSED_STEPS):
            step(bad, label)
    assert step.collapsed == loop.COLLAPSED_STEPS
