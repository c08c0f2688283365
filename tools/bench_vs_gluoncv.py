"""End to end against GluonCV's own training script: samples/s and top-1 on the digits.

    python tools/bench_vs_gluoncv.py --script /tmp/train_imagenet.py
    python tools/bench_vs_gluoncv.py --script train_imagenet.py --repeat 3 --epochs 15

The script is ``scripts/classification/imagenet/train_imagenet.py`` of the ``dmlc/gluon-cv``
repository (not in the gluoncv wheel; fetch it yourself). Both sides train the same network
(``--model``, default resnet18_v1b: the ResNet-18 both build) at 32 px on the digits demo set
(built under ``--work`` unless ``--data`` is given) with the full bag of the demo recipe:
warmup, cosine, zero gamma, no bias decay, label smoothing, mixup, batch 64, the same peak lr,
NAG, one decoding thread, ``OMP_NUM_THREADS`` threads each. Ours runs
``recipes/train_imagenet.py --recipe recipes/demo.yaml`` with the warmup and the unmixed
last epochs set to the script's (``--warmup-epochs``; it has no unmixed epochs by default);
the script runs hybridized (``--mode hybrid``, as GluonCV's published commands do) with
1000 classes, which it hard-codes. Each keeps its own conventions (initialisation, label
smoothing form, zero gamma on basic blocks: docs/notes.md §3).

Samples/s is the same quantity on both sides: images trained in an epoch / that epoch's
training time (validation excluded), the median over the epochs after the first (the
script's own log line counts one batch less; we count its batches from its last batch
line). Runs alternate (ours, script, ours, ...) so that drift on a shared machine hits both.
The load average is printed before and after: compare ratios from one invocation only.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from gluon_tricks.markdown import markdown_header, markdown_row

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 64


def load():
    """The 1-minute load average, as a string."""
    return f"{os.getloadavg()[0]:.2f}"


def run_ours(args, data, out, extra):
    """(samples/s per epoch, final top-1, wall seconds) of one run of our trainer."""
    cmd = [sys.executable, os.path.join(ROOT, "recipes", "train_imagenet.py"),
           "--recipe", os.path.join(ROOT, "recipes", "demo.yaml"),
           "--rec-train", os.path.join(data, "train.rec"),
           "--rec-val", os.path.join(data, "val.rec"), "--out", out, "--force",
           "--epochs", str(args.epochs), "--batch-size", str(BATCH),
           "--set", f"model={args.model}", "--set", f"warmup_epochs={args.warmup_epochs}",
           "--set", "mixup_off_epochs=0", "--set", "data.num_workers=1"]
    for kv in extra:
        cmd += ["--set", kv]
    tic = time.perf_counter()
    subprocess.run(cmd, env=_env(args), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - tic
    with open(os.path.join(out, "log.jsonl")) as f:
        epochs = [r for r in map(json.loads, f) if r.get("type") == "epoch"]
    return [r["samples_per_sec"] for r in epochs], epochs[-1]["val_top1"], wall


def run_script(args, data, work, peak_lr, num_samples):
    """(samples/s per epoch, final top-1, wall seconds) of one run of GluonCV's script."""
    log = os.path.join(work, "train_imagenet.log")
    cmd = [sys.executable, os.path.abspath(args.script), "--use-rec",
           "--rec-train", os.path.join(data, "train.rec"),
           "--rec-train-idx", os.path.join(data, "train.idx"),
           "--rec-val", os.path.join(data, "val.rec"),
           "--rec-val-idx", os.path.join(data, "val.idx"),
           "--model", args.model, "--input-size", "32", "--crop-ratio", "0.875",
           "--batch-size", str(BATCH), "--num-gpus", "0", "--num-epochs", str(args.epochs),
           "--lr", repr(peak_lr), "--warmup-epochs", str(args.warmup_epochs),
           "--lr-mode", "cosine", "--last-gamma", "--no-wd", "--label-smoothing", "--mixup",
           "--num-training-samples", str(num_samples), "-j", "1", "--mode", args.script_mode,
           "--log-interval", "100000", "--logging-file", log,
           "--save-dir", os.path.join(work, "params")]
    tic = time.perf_counter()
    subprocess.run(cmd, env=_env(args), cwd=work, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - tic
    speeds, top1, last_batch = [], None, None
    with open(log) as f:
        for line in f:
            m = re.search(r"Epoch\[\d+\] Batch \[(\d+)\]", line)
            if m:
                last_batch = int(m.group(1))  # 0-based index of the epoch's last batch
            m = re.search(r"\[Epoch \d+\] speed: \d+ samples/sec\s+time cost: ([\d.]+)", line)
            if m:
                speeds.append((last_batch + 1) * BATCH / float(m.group(1)))
            m = re.search(r"validation: err-top1=([\d.]+)", line)
            if m:
                top1 = 1 - float(m.group(1))
    return speeds, top1, wall


def _env(args):
    return dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=ROOT,
                MPLBACKEND="Agg")


def steady(speeds):
    """Median samples/s over the epochs after the first."""
    return statistics.median(speeds[1:] if len(speeds) > 1 else speeds)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--script", required=True, help="GluonCV's train_imagenet.py")
    p.add_argument("--data", help="digits demo set (default: built under --work)")
    p.add_argument("--work", help="folder for the set and the runs (default: a temp folder)")
    p.add_argument("--model", default="resnet18_v1b", help="a network both sides build")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1, help="pairs of runs, interleaved")
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of both sides")
    p.add_argument("--script-mode", default="hybrid",
                   help="the script's --mode (hybrid: static_alloc and static_shape; "
                   "imperative: not hybridized)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe override for our side only (repeatable)")
    p.add_argument("--only", choices=("ours", "script"), help="run one side only")
    args = p.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="bench_vs_gluoncv_")
    os.makedirs(work, exist_ok=True)
    data = args.data or os.path.join(work, "demo")
    if not os.path.exists(os.path.join(data, "train.rec")):
        from gluon_tricks.data.demo import make_demo_data
        make_demo_data(data, size=32, seed=0)
    from gluon_tricks.data.records import check_rec
    from gluon_tricks.train.config import resolve
    num_samples = check_rec(os.path.join(data, "train.rec"))
    cfg = resolve(os.path.join(ROOT, "recipes", "demo.yaml"), [("batch_size", BATCH)])
    peak_lr = cfg.peak_lr()
    print(f"{args.model} at 32 px, digits ({num_samples} training images), full bag, "
          f"{args.epochs} epochs, batch {BATCH}, peak lr {peak_lr:g}, "
          f"OMP_NUM_THREADS={args.threads}, script --mode {args.script_mode}; "
          f"{os.cpu_count()} cores, load {load()} at start")
    rows, ratios = [], []
    sides = [args.only] if args.only else ["ours", "script"]
    for r in range(args.repeat):
        result = {}
        for side in sides:
            before = load()
            if side == "ours":
                speeds, top1, wall = run_ours(args, data, os.path.join(work, f"ours{r}"),
                                              args.set)
            else:
                run_dir = os.path.join(work, f"script{r}")
                os.makedirs(run_dir, exist_ok=True)
                speeds, top1, wall = run_script(args, data, run_dir, peak_lr, num_samples)
            result[side] = steady(speeds)
            rows.append((r + 1, side, f"{steady(speeds):.1f}", f"{min(speeds[1:] or speeds):.1f}",
                         f"{max(speeds[1:] or speeds):.1f}", f"{top1:.4f}", f"{wall:.0f}",
                         f"{before} / {load()}"))
        if len(sides) == 2:
            ratios.append(result["ours"] / result["script"])
    print(markdown_header(("run", "side", "samples/s (median)", "min", "max", "final top-1",
                           "wall s", "load before / after")))
    for row in rows:
        print(markdown_row(row))
    if ratios:
        print(f"ours / script samples/s per pair: {', '.join(f'{x:.3f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
