"""Move trained weights to GluonCV (for its detection/segmentation backbones, paper §6) and back.

    python tools/export_gluoncv.py runs/r50d_cosine r50d_gluoncv.params --model resnet50_v1d
    python tools/export_gluoncv.py --import resnet152_v1d-GLUONCV.params teacher.params \
        --model resnet152_v1d

CHECKPOINT is a run folder (its best.params; --model defaults to its config.yaml's model)
or a .params file of ours. The output loads with
``gluoncv.model_zoo.get_model(MODEL, pretrained=False, classes=K).load_parameters(OUT)``:
K is read from the classifier weight, ``*_v1`` models are written in GluonCV's V1 layout,
FP16 checkpoints are cast to FP32. (GluonCV's zoo has no 18/34-layer v1c/v1d names; its
ResNetV1b class builds them, see gluon_tricks.models.gluoncv_model.)
--import reads a GluonCV .params file and writes one of ours (e.g. a distillation teacher).
An existing OUT is replaced only with --force; a .rec/.idx or a file in a run folder never.
"""
import argparse
import sys

from gluon_tricks.errors import UserError, run_cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="run folder or .params of ours (with --import: GluonCV's .params)")
    p.add_argument("out", metavar="OUT.params", help="file to write")
    p.add_argument("--model", help="network name, e.g. resnet50_v1d (default: the run's)")
    p.add_argument("--import", dest="import_", action="store_true",
                   help="the reverse: GluonCV .params -> ours")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing OUT (never a .rec/.idx or a run folder's file)")
    args = p.parse_args(argv)
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.export.gluoncv import export_to_gluoncv, import_from_gluoncv, model_of_run
    from gluon_tricks.models import gluoncv_name
    model = args.model or (None if args.import_ else model_of_run(args.checkpoint))
    if model is None:
        raise UserError(f"{args.checkpoint}: --model is required (no run folder config.yaml "
                        "names it)")
    if args.import_:
        classes = import_from_gluoncv(args.checkpoint, args.out, model, args.force)
        print(f"{args.out}: {model} with {classes} classes, our layout")
    else:
        classes = export_to_gluoncv(args.checkpoint, args.out, model, args.force)
        name = gluoncv_name(model)
        loader = (f"gluoncv.model_zoo.get_model({name!r}, pretrained=False, classes={classes})"
                  if name else f"gluon_tricks.models.gluoncv_model({model!r}, {classes})"
                  " (GluonCV's ResNetV1b class; its zoo has no such name)")
        print(f"{args.out}: {model} with {classes} classes; loads into {loader}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
