"""Score any weights on a validation .rec: top-1, top-5, images, images/s.

    python tools/validate.py runs/demo --rec-val data/demo/val.rec
    python tools/validate.py runs/demo --epoch 3 --rec-val data/demo/val.rec --json
    python tools/validate.py resnet50_v1d-117a384e.params --model resnet50_v1d \\
        --rec-val imagenet/val.rec --gpus 0 --batch-size 256

WEIGHTS is a run folder (its best.params, or checkpoints/epoch-N with --epoch N; model,
classes, input size and resize from its config.yaml), one of our .params files or a GluonCV
.params file (any of our ResNets, GluonCV's resnet*_v1 layout included, mobilenet1.0,
inception_v3; --model required). Classes are read from the classifier weight unless
--classes; input size and resize default to the network's (224/256, Inception-V3 299/342).
Every record of --rec-val is scored exactly once, with the trainer's validation pipeline.
This is how to check a packed ImageNet before training: GluonCV's published weights should
score what its model zoo reports (docs/reproduce.md, step 0).
"""
import argparse
import json
import sys

from gluon_tricks.errors import run_cli
from gluon_tricks.cli.common import add_batch_arguments, add_weights_arguments


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_weights_arguments(p)
    p.add_argument("--rec-val", required=True, help="validation RecordIO file (.rec + .idx)")
    add_batch_arguments(p, 100, "print one JSON line instead of text")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    from gluon_tricks.errors import UserError
    from gluon_tricks.infer.validate import progress_bar, validate
    from gluon_tricks.gpu.devices import gpu_contexts
    from gluon_tricks.cli.common import checkpoint_from_args
    from gluon_tricks.data import count_records
    if args.batch_size <= 0:
        raise UserError(f"--batch-size {args.batch_size}: expected a positive number")
    ckpt = checkpoint_from_args(args)
    contexts = gpu_contexts(args.gpus)
    total = count_records(args.rec_val) if sys.stderr.isatty() else 0
    result = validate(ckpt, args.rec_val, args.batch_size, contexts,
                      progress_bar(total) if total else None)
    if args.json:
        print(json.dumps(dict(result, rec_val=args.rec_val)))
    else:
        print(f"{ckpt.params} ({ckpt.model}, {ckpt.classes} classes, {ckpt.data.input_size} px "
              f"crop of {ckpt.data.resize}) on {args.rec_val}: top-1 {100 * result['top1']:.2f}%"
              f"  top-5 {100 * result['top5']:.2f}%  over {result['images']} images, "
              f"{result['images_per_s']:.0f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
