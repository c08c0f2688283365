"""Export trained weights to ONNX, and check the file with onnxruntime.

    python tools/export_onnx.py runs/demo runs/demo.onnx --check
    python tools/export_onnx.py resnet50_v1d-117a384e.params r50d.onnx --model resnet50_v1d

WEIGHTS is a run folder (its best.params, or --epoch N), one of our .params files or a
GluonCV .params file (--model required), as tools/validate.py takes them. The model takes
float32 (N, 3, S, S) RGB normalised by the run's mean and std (written into the model's
metadata with the input size and resize) and returns the logits; N is free. --check runs
it with onnxruntime on CPU beside MXNet on random inputs (batches of 1 and 3) and fails
unless they agree within --rtol of the largest logit (and fails on a non-finite logit).
An existing OUT is replaced only with --force; a .rec/.idx or a file in a run folder
never. Needs `make onnx` (onnx 1.13.1 and onnxruntime 1.15.1: the versions that work with
MXNet 1.9.1's exporter and numpy).
"""
import argparse
import json
import sys

from gluon_tricks.errors import run_cli
from gluon_tricks.cli.common import add_weights_arguments


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_weights_arguments(p, resize=False)
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--check", action="store_true", help="compare onnxruntime with MXNet")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing OUT (never a .rec/.idx or a run folder's file)")
    p.add_argument("--rtol", type=float, default=1e-4,
                   help="--check: largest difference allowed, relative to the largest logit")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    from gluon_tricks.export.onnx import OnnxError, check_onnx, export_onnx
    from gluon_tricks.cli.common import checkpoint_from_args
    ckpt = checkpoint_from_args(args)
    export_onnx(ckpt, args.out, args.force)
    result = dict(onnx=args.out, model=ckpt.model, classes=ckpt.classes,
                  input_size=ckpt.data.input_size, params=ckpt.params)
    if args.check:
        result.update(check_onnx(args.out, ckpt))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.out}: {ckpt.model}, {ckpt.classes} classes, input (N, 3, "
              f"{ckpt.data.input_size}, {ckpt.data.input_size}) from {ckpt.params}")
        if args.check:
            print(f"check: {result['runtime']} vs MXNet, batches {result['batch_sizes']}: "
                  f"largest difference {result['max_abs_diff']:.2e} "
                  f"({result['max_rel_diff']:.2e} of the largest logit)")
    if args.check and not result["max_rel_diff"] <= args.rtol:
        raise OnnxError(f"{args.out}: onnxruntime and MXNet differ by "
                        f"{result['max_rel_diff']:.2e} of the largest logit (> --rtol "
                        f"{args.rtol:g})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
