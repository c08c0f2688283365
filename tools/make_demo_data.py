"""Build the digits demo set (scikit-learn's 8x8 digits as RGB JPEGs, 80/20 stratified
split) and pack it into OUT_DIR/train.{rec,idx,lst} and OUT_DIR/val.{rec,idx,lst}.

    python tools/make_demo_data.py data/demo              # 32 px, seconds
    python tools/make_demo_data.py data/demo256 --size 256   # ImageNet-sized images
"""
import argparse
import logging
import sys

from gluon_tricks.errors import run_cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", help="output folder, e.g. data/demo")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    p.add_argument("--seed", type=int, default=0, help="split and packing seed (default 0)")
    p.add_argument("--workers", type=int,
                   help="packing processes (default: one per core)")
    p.add_argument("--force", action="store_true", help="rebuild an existing set")
    args = p.parse_args(argv)
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.data.demo import make_demo_data
    from gluon_tricks.data.pack import default_workers
    workers = default_workers() if args.workers is None else args.workers
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    out = make_demo_data(args.out_dir, size=args.size, seed=args.seed,
                         workers=workers, force=args.force,
                         progress=sys.stderr.isatty())
    for split, s in out.items():
        print(f"{s.paths[0]}: {s.packed} images, {len(s.classes)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
