"""Images in, class names out: top-k predictions of trained weights on image files.

    python tools/predict.py runs/demo data/demo/images/val/3
    python tools/predict.py resnet50_v1d-117a384e.params cat.jpg --model resnet50_v1d \\
        --classes-file imagenet_classes.txt --topk 5 --json

WEIGHTS is a run folder (best.params, or --epoch N) or a .params file (ours or GluonCV's,
--model required), as tools/validate.py takes them. IMAGES are files or folders (searched
recursively for .jpg/.png/...). Each image goes through the network's validation
transform (short side resized, centre crop, normalised). Class names come from
--classes-file (one a line, in label order: the X_classes.txt tools/pack_rec.py writes),
else from the run's training set, else they are the class indices. Every file is checked
first (undecodable, a JPEG cut short): one is an error naming it, or with --skip-bad a line
on stderr. Prints one line per image as soon as its batch is done, or one JSON line per
image with --json.
"""
import argparse
import json
import sys

from gluon_tricks.errors import run_cli
from gluon_tricks.cli.common import add_batch_arguments, add_weights_arguments


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_weights_arguments(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--classes-file", help="class names, one a line, in label order")
    p.add_argument("--topk", type=int, default=5, help="classes per image (default: 5)")
    p.add_argument("--skip-bad", action="store_true", help="report each unusable image file "
                   "(undecodable, cut short) on stderr and predict the others (default: stop "
                   "before any prediction, naming it)")
    add_batch_arguments(p, 32, "one JSON line per image")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    from gluon_tricks.errors import UserError
    from gluon_tricks.infer.predict import class_names, image_files, predict, usable_images
    from gluon_tricks.gpu.devices import gpu_contexts
    from gluon_tricks.cli.common import checkpoint_from_args
    for flag, value in (("--topk", args.topk), ("--batch-size", args.batch_size)):
        if value <= 0:
            raise UserError(f"{flag} {value}: expected a positive number")
    ckpt = checkpoint_from_args(args)
    names = class_names(ckpt, args.classes_file)
    ctx = gpu_contexts(args.gpus)[0]
    files = usable_images(image_files(args.images), args.skip_bad,
                          lambda path, why: print(f"skipping {path}: {why}", file=sys.stderr))
    for path, top in predict(ckpt, files, names, args.topk, args.batch_size, ctx):
        if args.json:
            print(json.dumps(dict(image=path, top=[dict(index=i, name=n, probability=p)
                                                   for i, n, p in top])), flush=True)
        else:
            print(f"{path}: " + ", ".join(f"{n} {100 * p:.1f}%" for _, n, p in top),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
