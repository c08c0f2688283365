"""Write ImageNet's validation labels (val_labels.txt for tools/pack_rec.py) from the devkit.

    python tools/imagenet_val_labels.py ILSVRC2012_devkit_t12 --out val_labels.txt
    python tools/imagenet_val_labels.py ILSVRC2012_devkit_t12 --out val_labels.txt \\
        --train-dir ~/imagenet/train        # also check the classes against the train folders

DEVKIT is the unpacked ILSVRC2012_devkit_t12.tar.gz (or its data/ folder): its
ILSVRC2012_validation_ground_truth.txt gives, on line i, the class of
ILSVRC2012_val_{i:08d}.JPEG as an ILSVRC2012 ID (1..1000), and data/meta.mat maps each ID to
its WordNet ID (n01440764, ...). The IDs are NOT in sorted-synset order, while the training
labels are the sorted class-folder names (WNIDs): writing the IDs minus one would pair almost
every validation image with another class, silently. This tool maps ID -> WNID (meta.mat) ->
index of the WNID among the 1000 sorted WNIDs, and writes "ILSVRC2012_val_00000001.JPEG 65"
lines. Reading meta.mat needs scipy (pip install "gluon-tricks[imagenet]").
"""
import argparse
import os
import sys

from gluon_tricks.errors import UserError, run_cli

GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
META = "meta.mat"
CLASSES = 1000


def _devkit_file(devkit, name):
    """``name`` in the devkit's data/ folder or in ``devkit`` itself."""
    for path in (os.path.join(devkit, "data", name), os.path.join(devkit, name)):
        if os.path.isfile(path):
            return path
    raise UserError(f"{devkit}: no {name} in it or in its data/ folder; pass the unpacked "
                    "ILSVRC2012_devkit_t12")


def wnids_by_id(meta_path):
    """{ILSVRC2012 ID: WNID} of the 1000 leaf classes of the devkit's meta.mat (its
    ``synsets`` with no children); the higher IDs are WordNet's inner nodes."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise UserError(f"{meta_path}: reading it needs scipy; pip install "
                        "\"gluon-tricks[imagenet]\" (or pip install scipy)") from None
    try:
        synsets = loadmat(meta_path, squeeze_me=True, struct_as_record=False)["synsets"]
        leaves = {int(s.ILSVRC2012_ID): str(s.WNID) for s in synsets
                  if int(s.num_children) == 0}
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise UserError(f"{meta_path}: not the devkit's meta.mat ({e})") from None
    if sorted(leaves) != list(range(1, CLASSES + 1)):
        raise UserError(f"{meta_path}: expected leaf synsets with IDs 1..{CLASSES}, got "
                        f"{len(leaves)}")
    return leaves


def val_labels(ground_truth_path, meta_path):
    """[(file name, label)] of the validation images in order, label = index of the image's
    WNID among the sorted WNIDs (the training folders' order); and the sorted WNIDs."""
    by_id = wnids_by_id(meta_path)
    index = {wnid: i for i, wnid in enumerate(sorted(by_id.values()))}
    rows = []
    with open(ground_truth_path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                class_id = int(line)
            except ValueError:
                raise UserError(f"{ground_truth_path}:{n}: expected an ILSVRC2012 ID, got "
                                f"{line.strip()[:40]!r}") from None
            if class_id not in by_id:
                raise UserError(f"{ground_truth_path}:{n}: ID {class_id} is not one of the "
                                f"{CLASSES} classes of {meta_path}")
            rows.append((f"ILSVRC2012_val_{len(rows) + 1:08d}.JPEG", index[by_id[class_id]]))
    return rows, sorted(by_id.values())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("devkit", help="the unpacked ILSVRC2012_devkit_t12 (or its data/ folder)")
    p.add_argument("--out", default="val_labels.txt", help="file to write (default: %(default)s)")
    p.add_argument("--train-dir", metavar="DIR",
                   help="the training image folder: check that its class folders are the "
                   "devkit's 1000 WNIDs")
    args = p.parse_args(argv)
    rows, wnids = val_labels(_devkit_file(args.devkit, GROUND_TRUTH),
                             _devkit_file(args.devkit, META))
    if args.train_dir:
        folders = sorted(d for d in os.listdir(args.train_dir)
                         if os.path.isdir(os.path.join(args.train_dir, d)))
        if folders != wnids:
            missing = sorted(set(wnids) - set(folders))[:3]
            raise UserError(f"{args.train_dir}: its class folders are not the devkit's "
                            f"{CLASSES} WNIDs ({len(folders)} folders; missing e.g. {missing})")
    with open(args.out, "w", encoding="utf-8") as f:
        f.writelines(f"{name} {label}\n" for name, label in rows)
    print(f"{args.out}: {len(rows)} images, labels 0..{CLASSES - 1} in sorted-WNID order "
          f"({wnids[0]} .. {wnids[-1]})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
