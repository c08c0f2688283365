"""Faster-RCNN on several devices launches every shard before the host waits, once."""
from types import SimpleNamespace

import mxnet as mx

from gluon_tricks.transfer.detection import Detection


def test_every_shard_is_launched_before_one_sync(monkeypatch):
    events = []

    class Task:  # GluonCV's ForwardBackwardTask: four (1,) loss metrics first
        def forward_backward(self, shard):
            events.append("launch")
            x = shard[0]
            return [x.sum().reshape(1) * k for k in (1, 2, 3, 4)] + [None] * 4

    real = mx.nd.NDArray.asscalar
    monkeypatch.setattr(mx.nd.NDArray, "asscalar",
                        lambda self: events.append("sync") or real(self))
    contexts = [mx.cpu(0), mx.cpu(1), mx.cpu(2)]
    task = Detection(cfg=SimpleNamespace(dataset="digits"), root=None, contexts=contexts)
    task._task = Task()
    batch = ([mx.nd.full((1, 2), d + 1.0) for d in range(3)],
             [mx.nd.zeros((1, 1))] * 3)
    loss = task.forward_backward(batch)
    assert events == ["launch"] * 3 + ["sync"]
    # shard d sums to 2 (d + 1); its four metrics to 10 times that; mean over the 3 devices
    assert loss == sum(10 * 2 * (d + 1) for d in range(3)) / 3
