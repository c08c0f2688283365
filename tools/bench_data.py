"""Images per second of the input pipelines at 224 px: ours (RecordIO and Gluon backends)
against a bare mx.io.ImageRecordIter given the same arguments, for the training
(random-resized-crop + jitter + lighting) and validation (resize 256 + centre crop)
pipelines, at 1 and 2 decoding threads.

    python tools/bench_data.py                    # builds the 256 px digits set in a temp dir
    python tools/bench_data.py --data data/demo256 --threads 1 2 4 --repeats 5

ImageRecordIter caps decoding threads at max(cores / 2 - 1, 1): on 2 cores every row
decodes with one thread, whatever it asks for (docs/notes.md §4).
"""
import argparse
import os
import sys
import tempfile
import time

import mxnet as mx

from gluon_tricks.data import DataConfig, make_loader
from gluon_tricks.data.demo import make_demo_data
from gluon_tricks.data.loaders import train_iter_args, val_iter_args
from gluon_tricks.errors import run_cli
from gluon_tricks.report.tables import markdown_header, markdown_row


def images_per_sec(run):
    """run() -> images consumed; returns images / second of wall time."""
    tic = time.perf_counter()
    n = run()
    return n / (time.perf_counter() - tic)


def bare(cfg, rec, batch_size, train, num_batches):
    """A bare ImageRecordIter with our arguments: construction + num_batches batches."""
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="folder with train.rec and val.rec (default: build the 256 px "
                                  "digits set in a temporary folder)")
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

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = tmp
            print(f"building the 256 px digits set in {tmp} ...", file=sys.stderr)
            make_demo_data(tmp, size=256, workers=os.cpu_count() or 1)
        print(f"{os.cpu_count()} cores; input {args.size} px, batch {args.batch_size}, "
              f"{args.batches} batches, best of {args.repeats} (gluon {args.gluon_repeats}); "
              "threads = preprocess_threads asked (ImageRecordIter uses max(cores/2 - 1, 1))")
        print(markdown_header(("pipeline", "threads", "bare ImageRecordIter img/s", "ours img/s",
                               "ours / bare", "gluon img/s", "gluon / bare")))
        for split, train in (("train", True), ("val", False)):
            rec = os.path.join(data, f"{split}.rec")
            for threads in args.threads:
                cfg = DataConfig(input_size=args.size, num_workers=threads)
                loader = make_loader(cfg, rec, args.batch_size, train)
                nb = min(args.batches, loader.batches_per_epoch)
                runs = {"bare": (bare(cfg, rec, args.batch_size, train, nb), args.repeats),
                        "ours": (ours(cfg, rec, args.batch_size, train, nb), args.repeats)}
                if args.gluon_repeats:
                    runs["gluon"] = (ours(cfg.replace(backend="gluon"), rec, args.batch_size,
                                          train, nb), args.gluon_repeats)
                rate = best_rates(runs, args.repeats)
                r_bare, r_ours = rate["bare"], rate["ours"]
                gluon = (f"{rate['gluon']:.0f}", f"{rate['gluon'] / r_bare:.2f}x"
                         ) if "gluon" in rate else ("-", "-")
                print(markdown_row((split, threads, f"{r_bare:.0f}", f"{r_ours:.0f}",
                                    f"{r_ours / r_bare:.2f}x", *gluon)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
