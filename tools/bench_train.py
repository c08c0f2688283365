"""Training throughput and peak memory: our trainer's step against a bare Gluon loop.

    python tools/bench_train.py                 # ResNet-50-D at 224 and ResNet-18-D at 32, CPU
    python tools/bench_train.py --steps 30 --case resnet18_v1d:32:128
    python tools/bench_train.py --horovod       # 1 and 2 Horovod ranks on this machine
    python tools/bench_train.py --profile --case resnet18_v1b:32:64   # where a step's time goes
    python tools/bench_train.py --accumulate 1 2 4   # one global batch in 1, 2 and 4 passes

Both loops train the same network, hybridized as the trainer does
(``gluon_tricks.train.nets.hybridize_student``), with the same NAG optimizer on the same in-memory batch; ours
adds what the paper's recipe needs (per-batch learning rate, dense targets through the
label-smoothing path, gradient reduction before the update). Each measurement runs in a fresh
process, so peak resident memory (ru_maxrss) is its own.

With --horovod: images/s of our step with hvd.DistributedTrainer under
``horovodrun -np R --gloo`` on this machine (BATCH per rank): 1 rank on all cores, 1 rank and
2 ranks on cores / 2 OpenMP threads each, the speed relative to 1 rank on all cores, and the
scaling efficiency img/s(R ranks) / (R x img/s(1 rank with the same threads)). The ranks
share the machine's cores, so this measures the cost of the gradient allreduce and of
splitting the cores, not the scaling across GPUs or machines.

With --accumulate K [K ...]: images/s of our step on the digits (scikit-learn's 8 x 8 digits,
the demo set's images, upscaled to the case's input size; 10 classes) at the same global
batch BATCH made of K micro-batches of BATCH / K, one optimizer update per K passes, as the
trainer accumulates (``accumulate``, issue 33); one row per K, with its speed relative to
the first K. Default case: ACCUMULATE_CASE, the demo's network at the digits' 32 px and twice
its batch. It shows what accumulating costs beyond its smaller passes.

With --profile: MXNet's profiler over the timed steps of our step, one table per case of the
operators by total time (ms per step, calls per step, share of all operator time), under the
engine and OpenMP settings of the trainer's command line. On CPU the engine runs operators one
at a time there (the naive engine), so the shares add up to the step.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from gluon_tricks.errors import UserError, run_cli
from gluon_tricks.markdown import markdown_header, markdown_row

CASES = ["resnet50_v1d:224:16", "resnet18_v1d:32:128"]
HOROVOD_CASES = ["resnet18_v1d:32:64"]
ACCUMULATE_CASE = "resnet18_v1d:32:128"
DIGITS_CLASSES = 10


def measure(loop, model, size, batch, steps, warmup, profile=False):
    """Images/s of `steps` timed steps after `warmup` untimed ones, and peak RSS in MiB;
    with ``profile``, also MXNet's aggregate operator times over the timed steps."""
    import mxnet as mx
    from mxnet import autograd, gluon

    from gluon_tricks.models import get_model, initializer
    from gluon_tricks.run.schedule import LRSchedule
    from gluon_tricks.train.config import TrainConfig
    from gluon_tricks.train.nets import hybridize_student
    from gluon_tricks.train.optim import make_optimizer
    from gluon_tricks.data.shards import split_batch
    from gluon_tricks.train.step import step_of

    classes = 1000
    mx.random.seed(0)
    data = mx.nd.random.normal(shape=(batch, 3, size, size))
    label = mx.nd.array([i % classes for i in range(batch)])
    net = get_model(model, classes=classes)
    net.initialize(initializer())
    hybridize_student(net, [mx.cpu()])
    trainer = gluon.Trainer(net.collect_params(), make_optimizer(0.1))
    if loop == "ours":
        step = step_of(TrainConfig(model=model, classes=classes), net, trainer, [mx.cpu()])
        schedule = LRSchedule(peak_lr=0.1, batches_per_epoch=steps + warmup, epochs=1,
                              warmup_epochs=0, mode="cosine")

        def one(i):
            trainer.set_learning_rate(schedule.lr(i))
            loss, _ = step(*split_batch(data, label, [mx.cpu()]))
            return loss
    else:
        loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

        def one(i):
            with autograd.record():
                loss = loss_fn(net(data), label)
            loss.backward()
            trainer.step(batch)
            return loss
    for i in range(1, warmup + 1):
        one(i).wait_to_read()
    if profile:
        trace = os.path.join(tempfile.mkdtemp(prefix="bench_train_"), "profile.json")
        mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=trace)
        mx.profiler.set_state("run")
    tic = time.perf_counter()
    for i in range(warmup + 1, warmup + steps + 1):
        one(i).wait_to_read()  # one sync per step in both loops
    elapsed = time.perf_counter() - tic
    result = dict(images_per_sec=steps * batch / elapsed,
                  peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if profile:
        mx.profiler.set_state("stop")
        stats = json.loads(mx.profiler.dumps(format="json"))["Time"].get("operator", {})
        result["operators"] = {name: (v["Count"], v["Total"]) for name, v in stats.items()}
        mx.profiler.dump()
        result["convolutions"] = convolution_times(trace, steps)
        shutil.rmtree(os.path.dirname(trace))
    return result


def convolution_times(trace, steps):
    """[(forward ms, backward ms)] per convolution in network order, averaged over the steps,
    from the profiler's trace (each step runs the forwards in order, the backwards reversed)."""
    with open(trace) as f:
        events = json.load(f)["traceEvents"]
    started, times = {}, {"Convolution": [], "_backward_Convolution": []}
    for e in events:
        if e.get("name") not in times:
            continue
        key = (e["name"], e.get("tid"))
        if e.get("ph") == "B":
            started[key] = e["ts"]
        elif e.get("ph") == "E" and key in started:
            times[e["name"]].append((e["ts"] - started.pop(key)) / 1000)
    fwd, bwd = times["Convolution"], times["_backward_Convolution"]
    n = len(fwd) // steps
    if n == 0 or len(bwd) != len(fwd):
        return []
    mean = [[sum(t[s * n + i] for s in range(steps)) / steps for i in range(n)]
            for t in (fwd, bwd)]
    return list(zip(mean[0], reversed(mean[1])))


def print_profile(case, result, steps):
    """One --profile table: operators by total time, per step."""
    ops = sorted(result["operators"].items(), key=lambda kv: -kv[1][1])
    total = sum(ms for _, ms in result["operators"].values())
    step_ms = 1000 * int(case.split(":")[2]) / result["images_per_sec"]
    print(f"\n{case}: {result['images_per_sec']:.1f} img/s, {step_ms:.1f} ms per step, of which "
          f"{total / steps:.1f} ms in operators")
    print(markdown_header(("operator", "calls/step", "ms/step", "share of operator time")))
    shown = 0.0
    for name, (count, ms) in ops[:12]:
        shown += ms
        print(markdown_row((name, f"{count / steps:g}", f"{ms / steps:.1f}",
                            f"{ms / total:.1%}")))
    if len(ops) > 12:
        print(markdown_row((f"{len(ops) - 12} others", "", f"{(total - shown) / steps:.1f}",
                            f"{(total - shown) / total:.1%}")))
    if result["convolutions"]:
        print(f"\n{case}: each convolution, in network order (ms per step)")
        print(markdown_header(("convolution", "forward ms", "backward ms", "backward / forward")))
        for i, (f, b) in enumerate(result["convolutions"], start=1):
            print(markdown_row((i, f"{f:.2f}", f"{b:.2f}", f"{b / f:.1f}")))


def digits(batch, size):
    """The first ``batch`` of scikit-learn's digits (repeated if need be) as the trainer sees
    the demo set's: (float32 NDArray (batch, 3, size, size) of grey levels in [0, 1],
    upscaled, grey in all three channels; (batch,) labels 0..9)."""
    import cv2
    import mxnet as mx
    import numpy as np
    from sklearn.datasets import load_digits

    found = load_digits()  # 8 x 8 images of grey levels 0..16
    index = np.arange(batch) % len(found.images)
    grey = np.stack([cv2.resize((found.images[i] / 16.0).astype(np.float32), (size, size),
                                interpolation=cv2.INTER_CUBIC) for i in index])
    images = np.repeat(grey[:, None], 3, axis=1)
    return mx.nd.array(images), mx.nd.array(found.target[index])


def measure_accumulate(case, accumulate, steps, warmup):
    """Images/s of ``steps`` timed updates of our step (after ``warmup``) on the digits, each
    of ``accumulate`` micro-batches of BATCH / accumulate images (``case``:
    MODEL:SIZE:BATCH, BATCH the global batch), and peak RSS in MiB."""
    import mxnet as mx
    from mxnet import gluon

    from gluon_tricks.data.shards import split_batch
    from gluon_tricks.models import get_model, initializer
    from gluon_tricks.run.schedule import LRSchedule
    from gluon_tricks.train.config import TrainConfig
    from gluon_tricks.train.nets import hybridize_student
    from gluon_tricks.train.optim import make_optimizer
    from gluon_tricks.train.step import step_of

    model, size, batch = case.split(":")
    size, batch = int(size), int(batch)
    micro = batch // accumulate
    data, label = digits(batch, size)
    mx.random.seed(0)
    net = get_model(model, classes=DIGITS_CLASSES)
    net.initialize(initializer())
    hybridize_student(net, [mx.cpu()])
    trainer = gluon.Trainer(net.collect_params(), make_optimizer(0.1))
    step = step_of(TrainConfig(model=model, classes=DIGITS_CLASSES), net, trainer, [mx.cpu()],
                   accumulate=accumulate)
    schedule = LRSchedule(peak_lr=0.1, batches_per_epoch=steps + warmup, epochs=1,
                          warmup_epochs=0, mode="cosine")
    parts = [split_batch(data[i * micro:(i + 1) * micro], label[i * micro:(i + 1) * micro],
                         [mx.cpu()]) for i in range(accumulate)]

    def update(i):
        trainer.set_learning_rate(schedule.lr(i))
        for xs, ys in parts:
            loss, _ = step(xs, ys)
        return loss
    for i in range(1, warmup + 1):
        update(i).wait_to_read()
    tic = time.perf_counter()
    for i in range(warmup + 1, warmup + steps + 1):
        update(i).wait_to_read()  # one sync per update, as in the other measurements
    elapsed = time.perf_counter() - tic
    return dict(images_per_sec=steps * batch / elapsed,
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def check_accumulate(cases, accumulates):
    """UserError (one line) for an --accumulate K that does not divide a case's BATCH."""
    for case in cases:
        batch = int(case.split(":")[2])
        bad = [k for k in accumulates if k < 1 or batch % k]
        if bad:
            raise UserError(f"--accumulate {bad[0]}: the global batch {batch} of {case} does "
                            "not split into that many equal micro-batches; choose divisors "
                            "of it")


def best_of_runs(flag, specs, args):
    """{spec: the fastest of ``args.repeat`` measurements}, each spec measured by this
    script with ``flag spec`` in a fresh process, the specs interleaved so that drift on a
    shared machine hits them alike."""
    best = {}
    for _ in range(args.repeat):
        for spec in specs:
            out = subprocess.run([sys.executable, __file__, flag, spec, "--steps",
                                  str(args.steps), "--warmup", str(args.warmup)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            if spec not in best or r["images_per_sec"] > best[spec]["images_per_sec"]:
                best[spec] = r
    return best


def bench_accumulate(cases, accumulates, args):
    """The --accumulate table: one row per case and number of micro-batches, each measured in
    a process of its own (``args``: steps, warmup, repeat), best of the repeats, the
    accumulation counts interleaved so that drift hits all alike."""
    print(markdown_header(("model", "input", "global batch", "accumulate", "micro-batch",
                           "img/s", f"vs accumulate {accumulates[0]}", "peak MiB")))
    for case in cases:
        model, size, batch = case.split(":")
        best = best_of_runs("--one-accumulate", [f"{k}:{case}" for k in accumulates], args)
        best = {k: best[f"{k}:{case}"] for k in accumulates}
        first = best[accumulates[0]]["images_per_sec"]
        for k in accumulates:
            speed = best[k]["images_per_sec"]
            print(markdown_row((model, size, batch, k, int(batch) // k, f"{speed:.1f}",
                                f"{speed / first:.3f}", f"{best[k]['peak_rss_mib']:.0f}")))
    return 0


def measure_rank(model, size, batch, steps, warmup):
    """Images/s over all ranks of our step with the job's trainer (hvd.DistributedTrainer
    under horovodrun), BATCH images per rank; each rank trains on its own random batch."""
    import mxnet as mx

    from gluon_tricks.models import get_model, initializer
    from gluon_tricks.run.parallel import detect
    from gluon_tricks.train.config import TrainConfig
    from gluon_tricks.train.nets import hybridize_student
    from gluon_tricks.train.optim import make_optimizer
    from gluon_tricks.data.shards import split_batch
    from gluon_tricks.train.step import step_of

    dist = detect(force_horovod=True)
    classes = 1000
    mx.random.seed(dist.rank)
    data = mx.nd.random.normal(shape=(batch, 3, size, size))
    label = mx.nd.array([(i + dist.rank) % classes for i in range(batch)])
    net = get_model(model, classes=classes)
    net.initialize(initializer())
    dist.broadcast_parameters(net.collect_params())
    hybridize_student(net, [mx.cpu()])
    trainer = dist.trainer(net.collect_params(), make_optimizer(0.1), 1)
    step = step_of(TrainConfig(model=model, classes=classes), net, trainer, [mx.cpu()])
    for _ in range(warmup):
        step(*split_batch(data, label, [mx.cpu()]))[0].wait_to_read()
    dist.barrier()
    tic = time.perf_counter()
    for _ in range(steps):
        step(*split_batch(data, label, [mx.cpu()]))[0].wait_to_read()
    dist.barrier()
    elapsed = time.perf_counter() - tic
    return dict(images_per_sec=steps * batch * dist.size / elapsed, is_root=dist.is_root)


def bench_horovod(cases, steps, warmup, repeat):
    """The --horovod table: 1 rank on all cores, 1 rank on half of them, 2 ranks on half each
    (horovodrun on this machine)."""
    cores = os.cpu_count() or 1
    bindir = os.path.dirname(sys.executable)
    horovodrun = os.path.join(bindir, "horovodrun")
    # (ranks, OpenMP threads per rank); the middle one is the per-rank reference of the last
    configs = sorted({(1, cores), (1, max(1, cores // 2)), (2, max(1, cores // 2))},
                     key=lambda c: (c[0], -c[1]))
    print(f"CPU, {cores} cores, Horovod over Gloo on one machine, {steps} timed steps, best of "
          f"{repeat}; the ranks share the cores")
    print(markdown_header(("model", "input", "batch/rank", "ranks", "OpenMP threads/rank",
                           "img/s", "vs 1 rank on all cores", "scaling efficiency")))
    for case in cases or HOROVOD_CASES:
        model, size, batch = case.split(":")
        speeds = {}
        for _ in range(repeat):
            for ranks, threads in configs:  # interleaved, so drift hits all alike
                env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                           PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
                out = subprocess.run(
                    [horovodrun, "-np", str(ranks), "-H", f"localhost:{ranks}", "--gloo",
                     sys.executable, __file__, "--one-rank", case, "--steps", str(steps),
                     "--warmup", str(warmup)],
                    env=env, capture_output=True, text=True, check=True, timeout=1800).stdout
                # horovodrun prefixes each line with [rank]<stdout>:; rank 0 reports
                line = [x for x in out.splitlines() if x.startswith("[0]<stdout>:{")][-1]
                r = json.loads(line.split(":", 1)[1])
                key = (ranks, threads)
                speeds[key] = max(speeds.get(key, 0.0), r["images_per_sec"])
        for ranks, threads in configs:
            # scaling efficiency: img/s of R ranks / (R x img/s of 1 rank with as many threads)
            print(markdown_row((model, size, batch, ranks, threads,
                                f"{speeds[ranks, threads]:.1f}",
                                f"{speeds[ranks, threads] / speeds[1, cores]:.3f}",
                                f"{speeds[ranks, threads] / (ranks * speeds[1, threads]):.3f}")))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", action="append", help="MODEL:SIZE:BATCH (repeatable); default: "
                   + ", ".join(CASES))
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--repeat", type=int, default=2, help="measurements per loop; best is kept")
    p.add_argument("--horovod", action="store_true",
                   help="images/s of 1 and 2 Horovod ranks (horovodrun --gloo) on this "
                   "machine and the scaling efficiency; BATCH is per rank; default case: "
                   + ", ".join(HOROVOD_CASES))
    p.add_argument("--profile", action="store_true",
                   help="MXNet's profiler over our step: operators by time, per case")
    p.add_argument("--accumulate", type=int, nargs="+", metavar="K",
                   help="images/s of our step on the digits at the case's global batch made "
                   f"of K micro-batches, one row per K (e.g. 1 2 4); default case: "
                   f"{ACCUMULATE_CASE}")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: "LOOP:MODEL:SIZE:BATCH"
    p.add_argument("--one-rank", help=argparse.SUPPRESS)  # internal: "MODEL:SIZE:BATCH"
    p.add_argument("--one-accumulate", help=argparse.SUPPRESS)  # internal: "K:MODEL:SIZE:BATCH"
    args = p.parse_args(argv)
    if args.one_accumulate:
        k, case = args.one_accumulate.split(":", 1)
        print(json.dumps(measure_accumulate(case, int(k), args.steps, args.warmup)))
        return 0
    if args.accumulate:
        check_accumulate(args.case or [ACCUMULATE_CASE], args.accumulate)
    if args.one_rank:
        model, size, batch = args.one_rank.split(":")
        r = measure_rank(model, int(size), int(batch), args.steps, args.warmup)
        if r.pop("is_root"):
            print(json.dumps(r))
        return 0
    if args.horovod:
        return bench_horovod(args.case, args.steps, args.warmup, args.repeat)
    if args.one:
        loop, model, size, batch = args.one.split(":")
        print(json.dumps(measure(loop, model, int(size), int(batch), args.steps, args.warmup,
                                 profile=args.profile)))
        return 0
    # both loops on the engine and OpenMP settings the trainer's command line uses on CPU
    from gluon_tricks.cli.common import set_up_process
    set_up_process(deterministic_cpu=True)
    print(f"CPU, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"MXNET_ENGINE_TYPE={os.environ['MXNET_ENGINE_TYPE']}, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, {args.steps} timed steps, "
          f"best of {args.repeat}")
    if args.accumulate:
        return bench_accumulate(args.case or [ACCUMULATE_CASE], args.accumulate, args)
    if args.profile:
        for case in args.case or CASES:
            out = subprocess.run([sys.executable, __file__, "--one", f"ours:{case}", "--profile",
                                  "--steps", str(args.steps), "--warmup", str(args.warmup)],
                                 capture_output=True, text=True, check=True).stdout
            print_profile(case, json.loads(out.strip().splitlines()[-1]), args.steps)
        return 0
    print(markdown_header(("model", "input", "batch", "bare img/s", "ours img/s", "speed ratio",
                           "bare MiB", "ours MiB", "memory ratio")))
    for case in args.case or CASES:
        model, size, batch = case.split(":")
        best = best_of_runs("--one", [f"{loop}:{case}" for loop in ("bare", "ours")], args)
        b, o = best[f"bare:{case}"], best[f"ours:{case}"]
        print(markdown_row((model, size, batch, f"{b['images_per_sec']:.1f}",
                            f"{o['images_per_sec']:.1f}",
                            f"{o['images_per_sec'] / b['images_per_sec']:.3f}",
                            f"{b['peak_rss_mib']:.0f}", f"{o['peak_rss_mib']:.0f}",
                            f"{o['peak_rss_mib'] / b['peak_rss_mib']:.3f}")))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
