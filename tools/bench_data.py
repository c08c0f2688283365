"""Images per second of the input pipelines at 224 px: ours (RecordIO, Gluon and, when NVIDIA
DALI is installed, DALI's CPU mode) against a bare mx.io.ImageRecordIter given the same
arguments, for the training (random-resized-crop + jitter + lighting) and validation
(resize 256 + centre crop) pipelines, per number of decoding threads; then what a host of N
cores can feed next to what N GPUs consume (gluon_tricks/data/throughput.py).

    python tools/bench_data.py                    # ImageNet-like set, built in a temp dir
    python tools/bench_data.py --images 256 --threads 1 --batches 6 --repeats 2
    python tools/bench_data.py --data data/imagenet --threads 1 2 4 --repeats 5
    python tools/bench_data.py --digits           # the 256 px digits set instead

The ImageNet-like set (gluon_tricks/data/imagenet_like.py) is cut from photographs that ship
with scikit-learn and matplotlib, at ImageNet's image sizes (mean about 410x360) and file
sizes (about 115 KB). ImageRecordIter caps decoding threads at max(cores / 2 - 1, 1): on 2
cores every row decodes with one thread, whatever it asks for (docs/notes.md §4), so the
host table scales the one-thread rate.
"""
import argparse
import importlib.util
import os
import sys
import tempfile
import time

from gluon_tricks.errors import run_cli
from gluon_tricks.markdown import markdown_header, markdown_row

# (logical CPUs, GPUs) of common hosts: 1-2 GPU workstations up to 8-GPU servers (an AWS
# p3.16xlarge has 64 vCPUs and 8 V100, a p4d.24xlarge 96 vCPUs and 8 A100, a DGX A100 256)
HOSTS = ((8, 1), (16, 2), (32, 4), (64, 8), (96, 8), (128, 8), (256, 8))


def images_per_sec(run):
    """run() -> images consumed; returns images / second of wall time."""
    tic = time.perf_counter()
    n = run()
    return n / (time.perf_counter() - tic)


def bare(cfg, rec, batch_size, train, num_batches):
    """A bare ImageRecordIter with our arguments: construction + num_batches batches."""
    import mxnet as mx  # here and below: --help answers without importing MXNet

    from gluon_tricks.data.loaders import train_iter_args, val_iter_args

    def run():
        args = train_iter_args(cfg, batch_size) if train else val_iter_args(cfg, batch_size)
        it = mx.io.ImageRecordIter(path_imgrec=rec, path_imgidx=os.path.splitext(rec)[0] + ".idx",
                                   shuffle=train, preprocess_threads=cfg.num_workers,
                                   verbose=False, **args)
        n = 0
        for _ in range(num_batches):
            batch = it.next()
            batch.data[0].wait_to_read()
            n += batch_size - batch.pad
        return n
    return run


def ours(cfg, rec, batch_size, train, num_batches):
    """num_batches batches of our loader, construction included."""
    from gluon_tricks.data import make_loader

    def run():
        loader = make_loader(cfg, rec, batch_size, train)
        n = 0
        for b, (data, label) in enumerate(loader.epoch(0), start=1):
            data.wait_to_read()
            n += data.shape[0]
            if b == num_batches:
                break
        return n
    return run


def best_rates(runs, repeats):
    """{name: best images/s over `repeats` rounds}; the runs take turns within a round, so
    that load from other processes on a shared machine hits them alike."""
    best = {}
    for r in range(repeats):
        for name, (run, times) in runs.items():
            if r < times:
                best[name] = max(best.get(name, 0.0), images_per_sec(run))
    return best


def host_table(per_thread):
    """Markdown lines: what hosts of HOSTS can feed at ``per_thread`` training img/s per
    decoding thread, next to what their GPUs consume."""
    from gluon_tricks.data.throughput import decoding_threads, feed_estimate, gpu_demand

    lines = [markdown_header((
        "host cores", "GPUs", "threads, 1 process", "CPU feed, 1 process (img/s)",
        "threads, 1 process per GPU", "CPU feed, 1 process per GPU (img/s)",
        "A100 FP16 want (img/s)", "V100 FP16 want (img/s)"))]
    for cores, gpus in HOSTS:
        lines.append(markdown_row((
            cores, gpus, decoding_threads(cores), f"{feed_estimate(per_thread, cores):,.0f}",
            decoding_threads(cores, gpus), f"{feed_estimate(per_thread, cores, gpus):,.0f}",
            f"{gpu_demand(gpus, 'A100'):,}", f"{gpu_demand(gpus, 'V100'):,}")))
    return lines


def build_set(args, tmp):
    """The folder holding train.rec and val.rec: --data, or a set built in ``tmp``."""
    from gluon_tricks.cpus import usable_cpus
    from gluon_tricks.data.demo import make_demo_data
    from gluon_tricks.data.imagenet_like import make_imagenet_like

    if args.data:
        return args.data
    if args.digits:
        print(f"building the 256 px digits set in {tmp} ...", file=sys.stderr)
        make_demo_data(tmp, size=256, workers=usable_cpus())
        return tmp
    print(f"building the ImageNet-like set ({args.images} + {args.images // 2} images) in "
          f"{tmp} ...", file=sys.stderr)
    stats = make_imagenet_like(tmp, args.images, max(1, args.images // 2),
                               workers=usable_cpus())
    for split, s in stats.items():
        print(f"ImageNet-like {split}: {s['images']} images, mean {s['mean_width']:.0f}x"
              f"{s['mean_height']:.0f} px, {100 * s['common_share']:.0f}% at 500x375/375x500/"
              f"500x333/333x500/500x500, {s['mean_kb']:.0f} KB a record")
    return tmp


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", help="folder with train.rec and val.rec (default: build the "
                                       "ImageNet-like set in a temporary folder)")
    source.add_argument("--digits", action="store_true",
                        help="build the 256 px digits set instead of the ImageNet-like one")
    p.add_argument("--images", type=int, default=512,
                   help="training images of the ImageNet-like set (default 512; half as many "
                        "for validation)")
    p.add_argument("--size", type=int, default=224, help="network input size (default 224)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="decoding threads to try (default 1 2)")
    p.add_argument("--batches", type=int, default=30,
                   help="batches per measurement (default 30, at most an epoch)")
    p.add_argument("--repeats", type=int, default=3,
                   help="best of this many measurements, taking turns (default 3)")
    p.add_argument("--gluon-repeats", type=int, default=1,
                   help="measurements of the slow Gluon backend (default 1; 0 skips it)")
    args = p.parse_args(argv)
    from gluon_tricks.cpus import usable_cpus
    from gluon_tricks.data import DataConfig, make_loader
    from gluon_tricks.data.throughput import AUTHORS_8_V100_IMAGES_PER_SEC
    dali = importlib.util.find_spec("nvidia") is not None and \
        importlib.util.find_spec("nvidia.dali") is not None

    with tempfile.TemporaryDirectory() as tmp:
        data = build_set(args, tmp)
        print(f"{usable_cpus()} usable CPUs of {os.cpu_count()}; input {args.size} px, "
              f"batch {args.batch_size}, "
              f"{args.batches} batches, best of {args.repeats} (gluon {args.gluon_repeats}"
              f"{', dali 1' if dali else ''}); threads = preprocess_threads asked "
              "(ImageRecordIter uses max(cores/2 - 1, 1))")
        columns = ["pipeline", "threads", "bare ImageRecordIter img/s", "ours img/s",
                   "ours / bare", "gluon img/s", "gluon / bare"]
        if dali:
            columns += ["dali (CPU) img/s", "dali / bare"]
        print(markdown_header(columns))
        one_thread = {}
        for split, train in (("train", True), ("val", False)):
            rec = os.path.join(data, f"{split}.rec")
            for threads in args.threads:
                cfg = DataConfig(input_size=args.size, num_workers=threads)
                loader = make_loader(cfg, rec, args.batch_size, train)
                nb = min(args.batches, loader.batches_per_epoch)
                runs = {"bare": (bare(cfg, rec, args.batch_size, train, nb), args.repeats),
                        "ours": (ours(cfg, rec, args.batch_size, train, nb), args.repeats)}
                for backend, times in (("gluon", args.gluon_repeats), ("dali", int(dali))):
                    if times:
                        runs[backend] = (ours(cfg.replace(backend=backend), rec,
                                              args.batch_size, train, nb), times)
                rate = best_rates(runs, args.repeats)
                r_bare = rate["bare"]
                cells = [split, threads, f"{r_bare:.0f}", f"{rate['ours']:.0f}",
                         f"{rate['ours'] / r_bare:.2f}x"]
                for backend in ("gluon", "dali") if dali else ("gluon",):
                    cells += ((f"{rate[backend]:.0f}", f"{rate[backend] / r_bare:.2f}x")
                              if backend in rate else ("-", "-"))
                print(markdown_row(cells), flush=True)
                if threads == 1:
                    one_thread[split] = rate["ours"]
    if "train" in one_thread:
        per_thread = one_thread["train"]
        print(f"\nWhat a host can feed at {per_thread:.0f} training img/s per decoding thread "
              "(ours, 1 thread, above), next to what its GPUs consume (ResNet-50, FP16, "
              "NVIDIA's MXNet numbers; the authors' 8 V100 logged about "
              f"{AUTHORS_8_V100_IMAGES_PER_SEC:,}); ImageRecordIter's cap applies per process:")
        print("\n".join(host_table(per_thread)))
    else:
        print("\n(pass --threads 1 for the table of what a host can feed)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
