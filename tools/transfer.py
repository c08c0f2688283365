"""Fine-tune GluonCV's Faster-RCNN (paper Table 8) or FCN (Table 9) from one of our
classification backbones; one recipe per table row.

    python tools/transfer.py --recipe recipes/table8/distill_mixup.yaml \\
        --backbone runs/r50d_distill_mixup --data ~/.mxnet/datasets/voc \\
        --out runs/t8_distill_mixup --gpus 0,1,2,3
    python tools/transfer.py --recipe recipes/table9/distill_mixup.yaml \\
        --backbone runs/r50d_distill_mixup --data ~/.mxnet/datasets/ade \\
        --out runs/t9_distill_mixup --gpus 0,1,2,3
    python tools/transfer.py --recipe recipes/transfer/digits_detection.yaml \\
        --backbone runs/demo --data data/scenes/voc --out runs/digits_detection   # miniature

See `--help`, docs/reproduce.md §5 and `make transfer` (the miniature). The loop lives
in gluon_tricks.transfer.
"""
import sys

from gluon_tricks.cli.transfer import main

if __name__ == "__main__":
    sys.exit(main())
