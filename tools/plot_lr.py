"""Paper Figure 3(a): learning rate against epoch, step and cosine decay with 5 warmup epochs.

    python tools/plot_lr.py                        # runs/figures/fig3a_lr.{png,pdf}
    python tools/plot_lr.py --out docs/results/fig3a_lr   # the README's figure (make figures)
    python tools/plot_lr.py --csv fig3a_lr.csv
    python tools/plot_lr.py --recipe recipes/table6/resnet50_v1d_efficient.yaml \
        --recipe recipes/table6/resnet50_v1d_cosine.yaml --out runs/figures/r50d_lr

The curves come from gluon_tricks.run.schedule, the code the trainer calls. Default: the
paper's batch 1024 (peak lr 0.4), 120 epochs, ImageNet's 1,281,167 images (1251 batches per
epoch). With --recipe, curves are labelled by the recipe's paper key (else its file name).
--out lr.png or lr.pdf is the prefix lr, --out FOLDER/ writes FOLDER/fig3a_lr.{png,pdf}.
--csv writes one file for all curves: ``schedule,iteration,epoch,lr`` with iteration
the 1-based update index and epoch = (iteration - 1) / batches per epoch.
"""
import argparse
import os
import sys

from gluon_tricks.errors import UserError, run_cli
from gluon_tricks.paper import IMAGENET_TRAIN_IMAGES
from gluon_tricks.report.figures import (DEFAULT_OUT, fig3a_curves, plot_lr, recipe_curve,
                                         write_lr_csv)


# points a curve may have: ImageNet's 120 epochs are 150,120 updates of batch 1024; a
# recipe of 10^8 epochs would need TiBs for its arrays
MAX_UPDATES = 10_000_000
FIGURE_EXTENSIONS = (".png", ".pdf")


def curves_of(recipes, images):
    from gluon_tricks.train.config import resolve  # brings MXNet: not before --help
    curves = []
    for path in recipes:
        cfg = resolve(path)
        label = cfg.paper or os.path.splitext(os.path.basename(path))[0]
        updates = cfg.epochs * (images // cfg.batch_size)
        if updates > MAX_UPDATES:
            raise UserError(f"{path}: {cfg.epochs:,} epochs of {images // cfg.batch_size:,} "
                            f"batches are {updates:,} updates, over the {MAX_UPDATES:,} a "
                            "plot draws (see --images, --set epochs)")
        try:
            curves.append(recipe_curve(cfg, images, label))
        except ValueError as e:
            raise UserError(f"{path}: {e} (see --images)") from None
    return curves


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", action="append", default=[], metavar="PATH",
                   help="plot this recipe's schedule instead (repeatable)")
    p.add_argument("--images", type=int, default=IMAGENET_TRAIN_IMAGES,
                   help="training images per epoch for --recipe (default: ImageNet's %(default)d)")
    p.add_argument("--out", default=os.path.join(DEFAULT_OUT, "fig3a_lr"),
                   help="output prefix: writes PREFIX.png and PREFIX.pdf (default: %(default)s)")
    p.add_argument("--csv", metavar="PATH", help="also write the curves as CSV")
    p.add_argument("--title", help="figure title")
    return p


def figure_prefix(out):
    """The PREFIX of PREFIX.png/.pdf that --out means: ``lr.png`` is ``lr`` (not
    ``lr.png.png``), a folder ``runs/`` is ``runs/fig3a_lr`` (not the hidden ``runs/.png``)."""
    if out.endswith(os.sep) or os.path.isdir(out):
        return os.path.join(out, "fig3a_lr")
    stem, ext = os.path.splitext(out)
    return stem if ext.lower() in FIGURE_EXTENSIONS else out


def written(flag, path, write):
    """``write()``'s result; a file system error (a read-only folder) is one line."""
    try:
        return write()
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write there ({e.strerror})") from None


def main(argv=None):
    args = parser().parse_args(argv)
    if args.csv and (args.csv.endswith(os.sep) or os.path.isdir(args.csv)):
        raise UserError(f"--csv {args.csv}: a folder; name the .csv file to write")
    prefix = figure_prefix(args.out)
    curves = curves_of(args.recipe, args.images) if args.recipe else fig3a_curves()
    title = args.title or (f"Learning rate schedules, {args.images:,} images per epoch"
                           if args.recipe else None)
    kwargs = {"title": title} if title else {}
    for path in written("--out", prefix, lambda: plot_lr(curves, prefix, **kwargs)):
        print(path)
    if args.csv:
        written("--csv", args.csv, lambda: write_lr_csv(args.csv, curves))
        print(args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
