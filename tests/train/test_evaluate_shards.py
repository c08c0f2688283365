"""Validation on several devices: each device's share is cut, cast and padded on the device,
its top-k hits counted there, and the host waits once at the end; the counts are numpy's."""
import mxnet as mx
import numpy as np

from gluon_tricks.data.shards import device_batches, device_shares
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.train.metrics import evaluate

TWO = [mx.cpu(0), mx.cpu(1)]


class HostLoader:
    """A loader whose validation epoch is fixed host batches (the last one short)."""
    batch_size = 8

    def __init__(self, batches):
        self.batches = batches

    def epoch(self, e):
        return [(mx.nd.array(x), mx.nd.array(y)) for x, y in self.batches]


def test_device_shares_are_split_and_load():
    for batch, devices in ((8, 2), (10, 3), (7, 4)):
        data = mx.nd.arange(batch)
        split = mx.gluon.utils.split_and_load(data, [mx.cpu(k) for k in range(devices)],
                                              even_split=False)
        assert [tuple(s.asnumpy()[[0, -1]].astype(int)) for s in split] == \
            [(start, stop - 1) for start, stop in device_shares(batch, devices)]


def test_a_short_batch_is_padded_on_each_device():
    loader = HostLoader([(np.ones((5, 3)), np.arange(5))])
    (xs, ys, n), = device_batches(loader, 0, TWO, "float16")
    assert n == 5 and [x.shape for x in xs] == [(4, 3), (4, 3)]
    assert [x.context for x in xs] == TWO and xs[0].dtype == np.float16
    np.testing.assert_array_equal(xs[1].asnumpy()[:, 0], [1, 0, 0, 0])
    np.testing.assert_array_equal(ys[1].asnumpy(), [4, 0, 0, 0])


def test_two_devices_count_numpys_top_k_with_one_wait(monkeypatch):
    rng = np.random.default_rng(0)
    net = mx.gluon.nn.Dense(7, in_units=6)
    net.initialize(mx.init.Xavier(), ctx=TWO)
    batches = [(rng.normal(size=(n, 6)), rng.integers(0, 7, n)) for n in (8, 8, 5)]
    w, b = net.weight.list_data()[0].asnumpy(), net.bias.list_data()[0].asnumpy()
    x = np.concatenate([x for x, _ in batches]).astype(np.float32)
    y = np.concatenate([y for _, y in batches])
    top = np.argsort(-(x @ w.T + b), axis=1)
    want = ((top[:, :1] == y[:, None]).any(1).mean(), (top[:, :5] == y[:, None]).any(1).mean())
    waits = []
    real = mx.nd.NDArray.asnumpy
    monkeypatch.setattr(mx.nd.NDArray, "asnumpy", lambda self: waits.append(1) or real(self))
    top1, top5, n = evaluate(net, HostLoader(batches), TWO, "float32", SingleProcess())
    assert n == 21 and np.allclose((top1, top5), want)
    assert len(waits) == len(TWO)  # one read of each device's counts, after the last batch
