"""Train a network of the paper with the tricks a recipe switches on.

    python recipes/train_imagenet.py --recipe recipes/table6/resnet50_v1d_mixup.yaml \
        --rec-train train.rec --rec-val val.rec --out runs/NAME [--gpus 0,1,2,3]

See `--help` and docs/reproduce.md. The loop lives in gluon_tricks.train (loop.py); the command line in gluon_tricks.cli.train.
"""
import sys

from gluon_tricks.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
