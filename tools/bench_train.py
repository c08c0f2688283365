"""Training throughput and peak memory: our trainer's step against a bare Gluon loop.

    python tools/bench_train.py                 # the issue's two cases, CPU
    python tools/bench_train.py --steps 30 --case resnet18_v1d:32:128

Both loops train the same hybridized network with the same NAG optimizer on the same
in-memory batch; ours adds what the paper's recipe needs (per-batch learning rate, dense
targets through the label-smoothing path, gradient reduction before the update). Each
measurement runs in a fresh process, so peak resident memory (ru_maxrss) is its own.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

CASES = ["resnet50_v1d:224:16", "resnet18_v1d:32:128"]


def measure(loop, model, size, batch, steps, warmup):
    """Images/s of `steps` timed steps after `warmup` untimed ones, and peak RSS in MiB."""
    import mxnet as mx
    from mxnet import autograd, gluon

    from gluon_tricks.models import get_model, initializer
    from gluon_tricks.train.config import TrainConfig
    from gluon_tricks.train.loop import TrainStep
    from gluon_tricks.train.optim import make_optimizer
    from gluon_tricks.train.schedule import LRSchedule

    classes = 1000
    mx.random.seed(0)
    data = mx.nd.random.normal(shape=(batch, 3, size, size))
    label = mx.nd.array([i % classes for i in range(batch)])
    net = get_model(model, classes=classes)
    net.initialize(initializer())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), make_optimizer(0.1))
    if loop == "ours":
        cfg = TrainConfig(model=model, classes=classes, batch_size=batch)
        step = TrainStep(cfg, net, trainer, [mx.cpu()])
        schedule = LRSchedule(peak_lr=0.1, batches_per_epoch=steps + warmup, epochs=1,
                              warmup_epochs=0, mode="cosine")

        def one(i):
            trainer.set_learning_rate(schedule.lr(i))
            loss, _, _ = step(data, label)
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
    tic = time.perf_counter()
    for i in range(warmup + 1, warmup + steps + 1):
        one(i).wait_to_read()  # one sync per step in both loops
    elapsed = time.perf_counter() - tic
    return dict(images_per_sec=steps * batch / elapsed,
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", action="append", help="MODEL:SIZE:BATCH (repeatable); default: "
                   + ", ".join(CASES))
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--repeat", type=int, default=2, help="measurements per loop; best is kept")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: "LOOP:MODEL:SIZE:BATCH"
    args = p.parse_args(argv)
    if args.one:
        loop, model, size, batch = args.one.split(":")
        print(json.dumps(measure(loop, model, int(size), int(batch), args.steps, args.warmup)))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    print(f"CPU, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {args.steps} timed steps, "
          f"best of {args.repeat}")
    print("| model | input | batch | bare img/s | ours img/s | speed ratio | bare MiB | ours MiB "
          "| memory ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in args.case or CASES:
        model, size, batch = case.split(":")
        best = {}
        for _ in range(args.repeat):
            for loop in ("bare", "ours"):  # interleaved, so drift hits both alike
                out = subprocess.run(
                    [sys.executable, __file__, "--one", f"{loop}:{case}", "--steps",
                     str(args.steps), "--warmup", str(args.warmup)],
                    capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                if loop not in best or r["images_per_sec"] > best[loop]["images_per_sec"]:
                    best[loop] = r
        b, o = best["bare"], best["ours"]
        print(f"| {model} | {size} | {batch} | {b['images_per_sec']:.1f} | "
              f"{o['images_per_sec']:.1f} | {o['images_per_sec'] / b['images_per_sec']:.3f} | "
              f"{b['peak_rss_mib']:.0f} | {o['peak_rss_mib']:.0f} | "
              f"{o['peak_rss_mib'] / b['peak_rss_mib']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
