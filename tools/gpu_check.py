"""GPU self-check: run this first on new GPUs, before a GPU-week of training.

    python tools/gpu_check.py                          # every GPU of this host
    horovodrun -np 8 -H localhost:8 python tools/gpu_check.py   # one GPU per rank
    python tools/gpu_check.py --model resnet18_v1d --size 32 --steps 10   # a quick look

For FP32 and FP16 it trains ResNet-50-D at 224 on one fixed batch (32 images per GPU) for a
few dozen steps, with our TrainStep and with a bare Gluon loop in GluonCV's style, on one
GPU and on all GPUs of the host, and prints a table (images/s, ours / bare, scaling
efficiency, peak memory of GPU 0, loss scale) and one verdict line per check: the loss is
finite and falls, FP16 weights have FP32 master copies, and under horovodrun Horovod's
allreduce equals the sum over ranks. Exit status 0 when every check passes, 1 otherwise,
2 when MXNet sees no GPU. Anchors for img/s: NVIDIA's MXNet ResNet-50 reaches about 1,376
images/s per V100 and 2,180 per A100 in mixed precision; docs/reproduce.md says more.
"""
import argparse
import os
import sys

from gluon_tricks.errors import UserError, run_cli


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet50_v1d", help="network (default: %(default)s)")
    p.add_argument("--size", type=int, default=224, help="input side in pixels (default 224)")
    p.add_argument("--batch", type=int, default=32, help="images per GPU (default 32)")
    p.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--dtype", action="append", choices=("float32", "float16"),
                   help="repeatable (default: both)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    from gluon_tricks.gpu.preflight import GpuError, check_gpus, judge_drivers, table as gpu_table
    gpu_verdicts = check_gpus()  # every GPU of the host, before MXNet touches one
    root = int(os.environ.get("HOROVOD_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or 0) == 0
    if root:  # one table per host, not one per rank
        sys.stdout.write(gpu_table(gpu_verdicts) + "".join(line + "\n" for line in host_lines()))
    for v in gpu_verdicts:
        if v.supported is False:
            raise GpuError(v.message())
    judge_drivers(gpu_verdicts)  # before MXNet builds a graph
    import mxnet as mx

    from gluon_tricks.train.selfcheck import FixedBatch, measure, table, verdicts

    gpus = mx.context.num_gpus()
    if gpus == 0:
        raise UserError("MXNet sees no GPU here (a CPU build of MXNet, or no CUDA device): "
                        "install mxnet-cu112/cu117 (README, 'Installing by hand') on a GPU host")
    print(host_feed(gpus, args.size))
    dist, allreduce_ok = None, None
    if "HOROVOD_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ:
        from gluon_tricks.run.parallel import detect
        dist = detect(force_horovod=True)
        device_sets = [[mx.gpu(dist.local_rank if gpus > 1 else 0)]]
        allreduce_ok = horovod_sums(dist, device_sets[0][0])
    else:
        device_sets = [[mx.gpu(0)]] + ([[mx.gpu(i) for i in range(gpus)]] if gpus > 1 else [])
    fixed = FixedBatch(per_device=args.batch, size=args.size)
    runs = [measure(loop, args.model, devices, dtype, fixed, args.steps, args.warmup)
            for dtype in args.dtype or ("float32", "float16")
            for devices in device_sets for loop in ("bare", "ours")]
    if dist is not None and not dist.is_root:
        return 0
    sys.stdout.write(table(runs))
    checks = verdicts(runs, allreduce_ok)
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f" ({detail})" if detail else ""))
    return 0 if all(ok for _, ok, _ in checks) else 1


def host_lines():
    """The rest of the first table: the CUDA libraries, nvJPEG (when DALI is installed),
    the Horovod build (when Horovod is installed), the CPUs this process may use."""
    import importlib.util

    from gluon_tricks.cpus import usable_cpus
    from gluon_tricks.gpu.cuda_libs import libraries_line
    lines = [libraries_line()]
    if importlib.util.find_spec("nvidia") and importlib.util.find_spec("nvidia.dali"):
        from gluon_tricks.data.dali import nvjpeg_library
        from gluon_tricks.data.records import DataError
        try:
            lines.append(f"nvJPEG (data.backend dali on GPUs): {nvjpeg_library()}")
        except DataError as e:
            lines.append(f"nvJPEG: NOT loadable: {e}")
    if importlib.util.find_spec("horovod"):
        try:
            import horovod.mxnet as hvd
        except (ImportError, OSError) as e:
            lines.append(f"Horovod: installed, not usable with this MXNet ({e})")
        else:
            from gluon_tricks.run.parallel import horovod_build
            lines.append(f"Horovod {__import__('horovod').__version__}: {horovod_build(hvd)}"
                         + ("" if hvd.cuda_built() else " (no GPU Horovod: docs/distributed.md)"))
    lines.append(f"CPUs this process may use: {usable_cpus()} (of {os.cpu_count()} on the host)")
    return lines


def host_feed(num_gpus, size):
    """One line: what this host's CPUs can decode for the GPUs (one decoding thread measured
    on a small ImageNet-like set, scaled by ImageRecordIter's thread cap) against what the
    GPUs want (NVIDIA's MXNet ResNet-50 FP16 numbers)."""
    import tempfile

    from gluon_tricks.data.imagenet_like import make_imagenet_like
    from gluon_tricks.cpus import usable_cpus
    from gluon_tricks.data.throughput import per_thread_rate, verdict
    ranks = int(os.environ.get("HOROVOD_LOCAL_SIZE", "1"))
    with tempfile.TemporaryDirectory() as tmp:
        make_imagenet_like(tmp, num_train=192, num_val=1)
        rate = per_thread_rate(os.path.join(tmp, "train.rec"), input_size=size)
    return verdict(rate, usable_cpus(), max(num_gpus, 1), processes=ranks)


def horovod_sums(dist, ctx):
    """On the GPU (NCCL's path): each rank contributes rank + 1 in 1024 elements; every
    element of the allreduced sum must be size (size + 1) / 2."""
    import mxnet as mx

    mine = mx.nd.full((1024,), dist.rank + 1.0, ctx=ctx)
    total = dist.hvd.allreduce(mine, average=False, name="gpu_check_sum").asnumpy()
    return bool((total == dist.size * (dist.size + 1) / 2).all())


if __name__ == "__main__":
    sys.exit(run_cli(main))
