"""K training steps of a small network WITHOUT BatchNorm, on fixed in-memory data, through
the loop's own pieces (TrainStep, dist.trainer, materialize_parameters,
dist.broadcast_parameters), for tests/run/test_horovod.py.

    python equivalence_worker.py OUT                # one process, the whole global batch
    horovodrun -np N ... equivalence_worker.py OUT  # N ranks, each its slice of every batch

Writes OUT/single.params or OUT/rank{r}.params. Each rank starts from DIFFERENT random
weights (seed 100 + rank) so that only the broadcast from rank 0 can make them agree; the
single process uses rank 0's seed. The last Dense layer leaves its input size to the first
batch (deferred initialisation, as GluonCV's MobileNet and Inception-V3 do).
"""
import os
import sys

import mxnet as mx
import numpy as np
from mxnet import gluon

from gluon_tricks.train.config import TrainConfig
from gluon_tricks.run.parallel import detect, materialize_parameters
from gluon_tricks.train.step import StepSettings, TrainStep
from gluon_tricks.train.optim import make_optimizer

STEPS, GLOBAL_BATCH, CLASSES, SIZE = 4, 16, 10, 8


def build():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(8, 3, in_channels=3, activation="relu"),
            gluon.nn.Flatten(),
            gluon.nn.Dense(16, in_units=8 * (SIZE - 2) ** 2, activation="relu"),
            gluon.nn.Dense(CLASSES))  # deferred: in_units from the first batch
    return net


def main(out):
    dist = detect()
    rng = np.random.default_rng(0)
    data = rng.normal(size=(STEPS, GLOBAL_BATCH, 3, SIZE, SIZE)).astype("float32")
    labels = rng.integers(0, CLASSES, size=(STEPS, GLOBAL_BATCH)).astype("float32")
    rank_batch = GLOBAL_BATCH // dist.size
    mine = slice(dist.rank * rank_batch, (dist.rank + 1) * rank_batch)

    mx.random.seed(100 + dist.rank)
    net = build()
    net.initialize(mx.init.Xavier(), ctx=[mx.cpu()])
    materialize_parameters(net, (1, 3, SIZE, SIZE), [mx.cpu()])
    dist.broadcast_parameters(net.collect_params())
    net.hybridize(static_alloc=True, static_shape=True)
    cfg = TrainConfig(classes=CLASSES, batch_size=GLOBAL_BATCH)
    trainer = dist.trainer(net.collect_params(), make_optimizer(0.1, momentum=0.9, wd=1e-4), 1)
    step = TrainStep(StepSettings.of(cfg), net, trainer, [mx.cpu()])
    for s in range(STEPS):
        trainer.set_learning_rate(0.1 * (s + 1) / STEPS)
        step([mx.nd.array(data[s, mine])], [mx.nd.array(labels[s, mine])])
    name = f"rank{dist.rank}.params" if dist.size > 1 else "single.params"
    net.save_parameters(os.path.join(out, name))
    dist.barrier()


if __name__ == "__main__":
    main(sys.argv[1])
