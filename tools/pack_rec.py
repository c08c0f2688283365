"""Pack a folder of images into MXNet RecordIO (PREFIX.rec, .idx, .lst, _classes.txt).

PREFIX_classes.txt has one class name per line; line i names label i.

    python tools/pack_rec.py ~/imagenet/train data/imagenet/train --resize 480 --workers 8
    python tools/pack_rec.py ~/imagenet/val data/imagenet/val --labels val_labels.txt

IMAGE_DIR holds one sub-folder per class (labels = sorted folder names), or, with --labels,
images listed in FILE as "filename label" or "filename classname" lines.
"""
import argparse
import logging
import sys

from gluon_tricks.errors import UserError, run_cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image_dir", help="folder of class sub-folders (or flat, with --labels)")
    p.add_argument("out_prefix", help="output path without extension, e.g. data/train")
    p.add_argument("--labels", metavar="FILE", help="label file for a flat folder")
    p.add_argument("--resize", type=int, metavar="SHORT_EDGE",
                   help="resize the shorter edge to this many pixels (default: keep)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality 1..100 (default 95)")
    p.add_argument("--encoding", choices=(".jpg", ".png"), default=".jpg",
                   help="image encoding in the records (default .jpg; .png is lossless)")
    p.add_argument("--workers", type=int,
                   help="decoding processes (default: one per core)")
    p.add_argument("--seed", type=int, default=0, help="seed of the record order (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    args = p.parse_args(argv)
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.data.pack import PackOptions, default_workers, pack_images
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise UserError(f"--workers {workers}: expected a positive number of processes")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    options = PackOptions(resize=args.resize, quality=args.quality, encoding=args.encoding,
                          seed=args.seed)
    s = pack_images(args.image_dir, args.out_prefix, options, labels_file=args.labels,
                    workers=workers, force=args.force, progress=sys.stderr.isatty())
    print(f"{s.paths[0]}: {s.packed} images, {len(s.classes)} classes, {s.skipped} skipped"
          + (f" (first: {s.skipped_files[0]})" if s.skipped else "")
          + f"; classes in {s.paths[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
