"""Who this process is in a data-parallel job: a single process (one or more devices) or one
Horovod rank. The loop talks only to this interface, so it never branches on the engine.

A Horovod job keeps its ranks identical by construction:

- parameters get concrete shapes before anything else (:func:`materialize_parameters`) and
  are broadcast from rank 0 before the first step;
- ``hvd.DistributedTrainer`` averages the gradients over ranks; with the loop's
  ``trainer.update(rank_batch * loss_scale)`` the update uses the mean gradient over the
  global batch (see :meth:`HorovodRank.trainer`);
- BatchNorm running statistics, which no gradient touches and each rank accumulates from its
  own shard, are averaged over ranks before every validation and checkpoint
  (:meth:`HorovodRank.average_running_stats`).

A rank that dies ends the job: horovodrun (Gloo) terminates the other ranks when one exits
non-zero, and names the rank that failed first.
"""
import os

import mxnet as mx
import numpy as np
from mxnet import gluon

from ..errors import RunError
from ..gpu.devices import check_gpu, contexts_of
from ..gpu.preflight import preflight


def materialize_parameters(net, sample_shape, contexts, dtype="float32"):
    """Give every deferred-initialised parameter of ``net`` (GluonCV's MobileNet and
    Inception-V3 leave ``in_units``/``in_channels`` to the first batch; our ResNets do not)
    its shape and its initial value, from a (N, 3, H, W) ``sample_shape``.

    Horovod's ``broadcast_parameters`` cannot send a parameter that has no data yet: it only
    patches a broadcast into its lazy initialisation, and such parameters have been seen left
    unbroadcast (horovod#895). We do what Gluon does
    on the first forward pass (shape inference on the graph, then the deferred initialiser),
    without running the network: a forward pass would move BatchNorm running statistics
    and, in inference mode, leave the weights in oneDNN layout, which Horovod then fails to
    broadcast ("We can't generate TBlob for MKLDNN data", docs/notes.md §4)."""
    params = net.collect_params()
    if not any(p._deferred_init for p in params.values()):
        return
    net.infer_shape(mx.nd.zeros(sample_shape, ctx=contexts[0], dtype=dtype))
    for p in params.values():
        # Gluon's own route out of deferred init (HybridBlock._deferred_infer_shape + this)
        p._finish_deferred_init()


class SingleProcess:
    """One process; several devices of it are reduced by the Trainer's kvstore."""

    rank = 0
    size = 1
    local_rank = 0
    local_size = 1
    is_root = True

    def contexts(self, gpus, dali=False):
        """The devices of this process: every GPU listed (ints), else the CPU (``dali``: the
        run reads its data with DALI, whose driver the preflight checks)."""
        return contexts_of(gpus, dali)

    def trainer(self, params, optimizer, num_devices):
        """A Trainer over the devices' copies; ``params`` must be initialised, with the same
        values on every device.

        update_on_kvstore=False: the loop reduces gradients, checks them for overflow (FP16
        loss scaling) and only then updates; see TrainStep. With several devices the
        kvstore is set up here, not at the first step: MXNet's Trainer then broadcasts the
        first device's copy of *every* parameter, BatchNorm running statistics included, to
        the others. After a forward pass that overwrites what the other devices' batches did
        to their statistics, and it happens once per process, so a resumed run would differ
        from one that never stopped (docs/notes.md §4)."""
        several = num_devices > 1
        trainer = gluon.Trainer(params, optimizer, kvstore="device" if several else None,
                                update_on_kvstore=False if several else None)
        if several:
            trainer.allreduce_grads()  # sets up the kvstore; the gradients are all zero
        return trainer

    def broadcast_parameters(self, params):
        """Nothing to do: there is no other rank."""

    def average_running_stats(self, params):
        """With several devices: average, over the devices, the copies of the parameters no
        gradient updates (BatchNorm running mean and variance, float32 in FP16 networks
        too), so that every device validates, and the checkpoint holds, the same network."""
        for p in params.values():
            copies = p.list_data() if p.grad_req == "null" else []
            if len(copies) > 1:
                mean = mx.nd.add_n(*[c.as_in_context(copies[0].context) for c in copies])
                mean = mean / len(copies)
                for c in copies:
                    mean.copyto(c)

    def allreduce_sum(self, values):
        return np.asarray(values, dtype=np.float64)

    def barrier(self):
        """Nothing to wait for."""


def launched_by_horovod():
    """horovodrun (Gloo or MPI) sets these in every rank's environment."""
    return any(k in os.environ for k in ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"))


class HorovodRank:
    """One rank of a Horovod job, one device per rank: gradients averaged by
    hvd.DistributedTrainer, parameters broadcast from rank 0, BatchNorm running statistics
    averaged and metrics summed over ranks."""

    def __init__(self):
        try:
            import horovod.mxnet as hvd
        except ImportError:
            raise RunError("--horovod: horovod is not installed with MXNet support; run "
                           "`make horovod` (see docs/distributed.md)") from None
        hvd.init()
        self.hvd = hvd
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
        self.local_size = hvd.local_size()
        self.is_root = self.rank == 0
        self._calls = 0

    def contexts(self, gpus, dali=False):
        """This rank's one device (:func:`rank_gpu`), else the CPU. With GPUs, Horovod must
        have been built with CUDA (:func:`require_gpu_horovod`)."""
        if not gpus:
            return [mx.cpu()]
        require_gpu_horovod(self.hvd)
        gpu = rank_gpu(gpus, self.local_rank, self.local_size, mx.context.num_gpus())
        preflight([gpu], dali=dali)
        return [mx.gpu(gpu)]

    def trainer(self, params, optimizer, num_devices):
        """A DistributedTrainer. Its allreduce_grads() averages each gradient over ranks (in
        Horovod's C++ op, or, on CPU/Gloo and NCCL < 2.10, as a sum with 1/size folded into the
        trainer's scale); update(rank_batch * s) then rescales by 1/(rank_batch * s). Each
        rank's gradient is the sum over its rank_batch samples (the loop backpropagates the
        per-sample losses), so the step uses sum over the global batch / (size * rank_batch):
        the global mean, as one process with the whole batch would."""
        if num_devices != 1:
            raise RunError(f"Horovod runs one device per rank, got {num_devices}: launch one "
                           "rank per GPU (horovodrun -np <GPUs>) and list them in --gpus")
        return self.hvd.DistributedTrainer(params, optimizer)

    def broadcast_parameters(self, params):
        """Rank 0's values of every parameter (trainable and running statistics), in place."""
        deferred = [name for name, p in params.items() if p._deferred_init]
        if deferred:  # Horovod would silently skip them (horovod#895)
            raise AssertionError(f"parameters without data before broadcast: {deferred[:3]}; "
                                 "call materialize_parameters first")
        self.hvd.broadcast_parameters(params, root_rank=0)

    def average_running_stats(self, params):
        """Average, in place, the parameters no gradient updates (BatchNorm running mean and
        variance): each rank accumulated them from its own shard. Afterwards every rank holds
        the same network, so validation counts summed over ranks are the exact metric of the
        network rank 0 checkpoints (as Gluon averages the copies of several devices when it
        saves them)."""
        for name, p in sorted(params.items()):
            if p.grad_req == "null":
                self.hvd.allreduce_(p.data(), average=True, name=f"gt_running.{name}")

    def allreduce_sum(self, values):
        """The element-wise sum over ranks of ``values`` (a sequence of numbers), float64."""
        self._calls += 1
        total = self.hvd.allreduce(mx.nd.array(np.asarray(values, dtype=np.float64),
                                               dtype="float64"),
                                   average=False, name=f"gt_allreduce_sum_{self._calls}")
        return total.asnumpy()

    def barrier(self):
        self.allreduce_sum([0.0])


def horovod_build(hvd):
    """What the Horovod module ``hvd`` (horovod.mxnet) was built with, in a few words, e.g.
    'CUDA no, NCCL no, Gloo yes, MPI no'."""
    nccl = hvd.nccl_built()  # NCCL_VERSION_CODE: 21805 for 2.18.5; 2708 for 2.7.8 (< 2.9)
    major, rest = divmod(nccl, 10000 if nccl >= 10000 else 1000)
    return (f"CUDA {'yes' if hvd.cuda_built() else 'no'}, "
            f"NCCL {f'{major}.{rest // 100}.{rest % 100}' if nccl else 'no'}, "
            f"Gloo {'yes' if hvd.gloo_built() else 'no'}, MPI {'yes' if hvd.mpi_built() else 'no'}")


def require_gpu_horovod(hvd):
    """RunError (one line) unless Horovod (``hvd``) was built with CUDA. A build without it
    (``make horovod``: Gloo, no CUDA) hands the device pointers of GPU arrays to its CPU
    collectives."""
    if not hvd.cuda_built():
        raise RunError(f"--gpus under Horovod: this Horovod was built without CUDA "
                       f"({horovod_build(hvd)}), so it cannot reduce GPU arrays; use a Horovod "
                       "built with NCCL (docs/distributed.md, 'Installing Horovod'), or one "
                       "process with --gpus and no horovodrun")


def rank_gpu(gpus, local_rank, local_size, visible):
    """The GPU id a Horovod rank trains on. ``gpus``: the ids of --gpus; ``visible``: how many
    GPUs this process sees. One visible GPU per rank (a scheduler such as SLURM sets
    CUDA_VISIBLE_DEVICES per rank): that one, id 0, whatever --gpus lists. Otherwise the
    host's GPUs are shared out, ``gpus[local_rank]``."""
    if visible == 1:
        return 0
    check_gpu(gpus, 0, visible)
    if len(gpus) < local_size:
        raise RunError(f"--gpus {','.join(map(str, gpus))}: {len(gpus)} GPU(s) for "
                       f"{local_size} ranks on this host; list one GPU per rank (or launch "
                       "fewer ranks per host)")
    check_gpu(gpus, gpus[local_rank], visible)
    return gpus[local_rank]


def lost_a_rank(exc):
    """Whether ``exc`` is Horovod telling this rank that the job lost another rank (a
    collective operation failed because a peer exited or was killed)."""
    return type(exc).__name__ == "HorovodInternalError" or "Horovod has been shut down" in str(exc)


def detect(force_horovod=False):
    """Horovod ranks when launched by horovodrun (or asked with --horovod), else one process."""
    if force_horovod or launched_by_horovod():
        return HorovodRank()
    return SingleProcess()
