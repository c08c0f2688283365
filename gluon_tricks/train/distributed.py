"""Who this process is in a data-parallel job: a single process (one or more devices) or one
Horovod rank. The loop talks only to this interface, so it never branches on the engine."""
import os

import numpy as np
from mxnet import gluon

from ..errors import RunError


class SingleProcess:
    """One process; several devices of it are reduced by the Trainer's kvstore."""

    rank = 0
    size = 1
    local_rank = 0
    is_root = True

    def trainer(self, params, optimizer, num_devices):
        # update_on_kvstore=False: the loop reduces gradients, checks them for overflow
        # (FP16 loss scaling) and only then updates; see TrainStep.
        return gluon.Trainer(params, optimizer, kvstore="device" if num_devices > 1 else None,
                             update_on_kvstore=False if num_devices > 1 else None)

    def broadcast_parameters(self, params):
        """Nothing to do: there is no other rank."""

    def allreduce_sum(self, values):
        return np.asarray(values, dtype=np.float64)

    def barrier(self):
        """Nothing to wait for."""


def launched_by_horovod():
    """horovodrun (Gloo or MPI) sets these in every rank's environment."""
    return any(k in os.environ for k in ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"))


class HorovodRanks:
    """One rank of a Horovod job: gradients averaged by hvd.DistributedTrainer, parameters
    broadcast from rank 0, metrics summed over ranks."""

    def __init__(self):
        try:
            import horovod.mxnet as hvd
        except ImportError:
            raise RunError("--horovod: horovod is not installed with MXNet support; see "
                               "README (HOROVOD_WITH_MXNET=1 pip install horovod)") from None
        hvd.init()
        self.hvd = hvd
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
        self.is_root = self.rank == 0
        self._calls = 0

    def trainer(self, params, optimizer, num_devices):
        return self.hvd.DistributedTrainer(params, optimizer)

    def broadcast_parameters(self, params):
        self.hvd.broadcast_parameters(params, root_rank=0)

    def allreduce_sum(self, values):
        import mxnet as mx
        self._calls += 1
        total = self.hvd.allreduce(mx.nd.array(np.asarray(values, dtype=np.float64),
                                               dtype="float64"),
                                   average=False, name=f"gt_allreduce_sum_{self._calls}")
        return total.asnumpy()

    def barrier(self):
        self.allreduce_sum([0.0])


def detect(force_horovod=False):
    """Horovod ranks when launched by horovodrun (or asked with --horovod), else one process."""
    if force_horovod or launched_by_horovod():
        return HorovodRanks()
    return SingleProcess()
