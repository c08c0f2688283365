"""Build the miniature detection and segmentation sets (paper §6 in miniature) from the
digits: canvases with 1-3 digits, in Pascal VOC layout (boxes) and ADE20K layout (label
maps), which GluonCV's own dataset classes read.

    python tools/make_digit_scenes.py data/scenes            # 240 train + 80 val canvases
    python tools/make_digit_scenes.py data/scenes --train 40 --val 10 --size 96 --force
    python tools/make_digit_scenes.py data/scenes --size 96 --scale 32 56 --max-digits 2 \
        --stroke 0.05                      # the sets of the miniature recipes (recipes/transfer)

Layouts and label values: gluon_tricks/transfer/scenes.py.
"""
import argparse
import sys

from gluon_tricks.errors import run_cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--train", type=int, default=240, help="training canvases")
    p.add_argument("--val", type=int, default=80, help="validation canvases")
    p.add_argument("--size", type=int, default=128, help="canvas side, pixels")
    p.add_argument("--scale", type=int, nargs=2, metavar=("MIN", "MAX"),
                   help="digit side, pixels (default: size/5 to 3 size/8)")
    p.add_argument("--max-digits", type=int, default=3, help="digits per canvas, at most")
    p.add_argument("--stroke", type=float, default=0.35,
                   help="ink fraction above which a pixel is labelled as its digit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rebuild existing sets")
    args = p.parse_args(argv)
    from gluon_tricks.data import DataError
    from gluon_tricks.transfer.scenes import make_digit_scenes
    for flag, value in (("--train", args.train), ("--val", args.val), ("--size", args.size),
                        ("--max-digits", args.max_digits)):
        if value <= 0:
            raise DataError(f"{flag} {value}: expected a positive number")
    scale = args.scale or (max(8, args.size // 5), max(8, args.size * 3 // 8))
    done = make_digit_scenes(args.out_dir, args.train, args.val, args.size, args.seed,
                             max_digits=args.max_digits, scale=tuple(scale),
                             stroke=args.stroke, force=args.force)
    print(f"{done['voc']}/VOC2007 and {done['ade']}/ADEChallengeData2016: {done['train']} "
          f"training and {done['val']} validation canvases")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
