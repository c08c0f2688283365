"""Pack a folder of images into MXNet RecordIO (``.rec`` + ``.idx`` + ``.lst``), the way
MXNet's ``tools/im2rec.py`` does (OpenCV decode, optional short-edge resize, ``pack_img``
records with an ``IRHeader``), plus a ``PREFIX_classes.txt`` naming each label.

Two layouts are accepted:

- class folders (ImageNet ``train/``): ``IMAGE_DIR/<class>/<image>``, images in folders
  below a class folder included (as im2rec's ``--recursive``); label = position of the class
  in the sorted list of sub-folder names;
- a flat folder and a label file (how ImageNet ``val/`` ships): lines ``filename label``
  (integers) or ``filename classname`` (label = position in the sorted class names).

Every output is written under a temporary name and renamed once complete, so a crash never
leaves a half-written set that looks finished; temporary files a killed packer left behind
are removed by the next run. One packer writes a prefix at a time: it holds
``PREFIX.lock``, and a second one is refused in one line naming the first. A file that is
not an image the trainer can read (the check of :mod:`.images`: undecodable, a JPEG cut
short, over ``MAX_PIXELS``; or a name with a tab or newline) is skipped, named in a warning
and counted; a class left without any image is an error, as it would shift labels.
"""
import contextlib
import logging
import math
import multiprocessing
import os
import random
from dataclasses import dataclass, field
from typing import Optional

import cv2

from ..cpus import usable_cpus
from ..locks import FileLock
from .images import MAX_PIXELS, decode
from .records import DataError, paths

log = logging.getLogger("gluon_tricks.data")

ENCODINGS = (".jpg", ".png")


@dataclass(frozen=True)
class PackOptions:
    """What the packed records hold, besides the images: the same options on the same
    folder give the same files.

    resize: if set, the shorter edge is resized to this many pixels (bilinear, as im2rec).
    quality: JPEG quality 1..100 (ignored for PNG).
    encoding: ".jpg" or ".png" (lossless).
    seed: records are stored in an order shuffled with this seed.
    """
    resize: Optional[int] = None
    quality: int = 95
    encoding: str = ".jpg"
    seed: int = 0

    def __post_init__(self):
        """DataError (one line naming the option) on a value no packer accepts."""
        if self.encoding not in ENCODINGS:
            raise DataError(f"encoding {self.encoding!r}: expected one of "
                            f"{', '.join(ENCODINGS)}")
        if not 1 <= self.quality <= 100:
            raise DataError(f"quality {self.quality}: expected 1..100")
        if self.resize is not None and not 0 < self.resize <= math.isqrt(MAX_PIXELS):
            raise DataError(f"resize {self.resize}: expected a positive number of pixels, at "
                            f"most {math.isqrt(MAX_PIXELS)} (its square is the {MAX_PIXELS} "
                            "pixels an image may have)")


@dataclass
class PackSummary:
    """What :func:`pack_images` wrote: ``packed`` records, ``skipped`` unreadable files
    (their paths in ``skipped_files``), ``classes`` names (index = label), output ``paths``."""
    packed: int
    skipped: int
    classes: list
    paths: tuple
    skipped_files: list = field(default_factory=list)


def _is_candidate(name):
    return not name.startswith(".")


def list_class_folders(image_dir):
    """[(relative path, label)] and class names for a folder of class sub-folders.

    Raises DataError if there is no sub-folder or a sub-folder holds no file."""
    if not os.path.isdir(image_dir):
        raise DataError(f"{image_dir}: no such folder")
    classes = sorted(d for d in os.listdir(image_dir)
                     if _is_candidate(d) and os.path.isdir(os.path.join(image_dir, d)))
    if not classes:
        raise DataError(f"{image_dir}: no class sub-folders; for a flat folder pass "
                        "--labels FILE")
    _check_class_folders(image_dir, classes)
    items = []
    for label, name in enumerate(classes):
        files = []
        for root, dirs, names in os.walk(os.path.join(image_dir, name)):
            dirs[:] = sorted(d for d in dirs if _is_candidate(d))
            rel = os.path.relpath(root, os.path.join(image_dir, name))
            files += [os.path.normpath(os.path.join(rel, f)) for f in names if _is_candidate(f)]
        files.sort()
        if not files:
            raise DataError(f"{os.path.join(image_dir, name)}: empty class folder; remove it or "
                            "add its images (labels come from the sorted folder names)")
        items.extend((os.path.join(name, f), label) for f in files)
    return items, classes


def _check_class_folders(image_dir, classes):
    """DataError for a class name _classes.txt and the .lst cannot hold (a tab or a line
    break), or a class folder that links back to the image folder (or above it): its
    images would be packed twice, once under the wrong label."""
    top = os.path.realpath(image_dir)
    for name in classes:
        if any(c in name for c in "\t\n\r"):
            raise DataError(f"{os.path.join(image_dir, name)!r}: a class folder name with a tab "
                            "or line break, which _classes.txt cannot hold; rename it")
        real = os.path.realpath(os.path.join(image_dir, name))
        if top == real or top.startswith(real.rstrip(os.sep) + os.sep):
            raise DataError(f"{os.path.join(image_dir, name)}: links to {real}, which holds the "
                            "image folder itself; its images would be packed twice")


def list_with_labels(image_dir, labels_file):
    """[(relative path, label)] and class names for a flat folder and a label file whose
    lines are ``filename label`` or ``filename classname``. Raises DataError."""
    if not os.path.isdir(image_dir):
        raise DataError(f"{image_dir}: no such folder")
    if not os.path.isfile(labels_file):
        raise DataError(f"{labels_file}: no such label file")
    rows, first_line = [], {}
    with open(labels_file, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2:
                raise DataError(f"{labels_file}:{n}: expected 'filename label', got "
                                f"{line.strip()[:60]!r}")
            inside = os.path.normpath(fields[0])
            if os.path.isabs(inside) or inside == ".." or inside.startswith(".." + os.sep):
                raise DataError(f"{labels_file}:{n}: {fields[0]!r} is not inside {image_dir}; "
                                "name files relative to the image folder")
            if fields[0] in first_line:
                raise DataError(f"{labels_file}:{n}: {fields[0]!r} is listed again (first on "
                                f"line {first_line[fields[0]]}); one label per file")
            first_line[fields[0]] = n
            rows.append(tuple(fields))
    if not rows:
        raise DataError(f"{labels_file}: no label line")
    names = [c for _, c in rows]
    if all(c.lstrip("-").isdigit() for c in names):
        ints = [int(c) for c in names]
        if min(ints) < 0:
            raise DataError(f"{labels_file}: negative label {min(ints)}")
        classes = [str(i) for i in range(max(ints) + 1)]
        items = [(fn, i) for (fn, _), i in zip(rows, ints)]
    else:
        classes = sorted(set(names))
        index = {c: i for i, c in enumerate(classes)}
        items = [(fn, index[c]) for fn, c in rows]
    for fn, _ in items:
        if not os.path.isfile(os.path.join(image_dir, fn)):
            raise DataError(f"{labels_file}: lists {fn!r}, which is not in {image_dir}")
    return items, classes


def _encode(job):
    """Worker: read, check (:func:`images.decode`), resize and encode one image. Returns
    (bytes or None, reason)."""
    path, options = job
    if any(c in os.path.basename(path) for c in "\t\n\r"):
        return None, "a tab or newline in its name (the .lst could not list it)"
    try:
        with open(path, "rb") as f:
            img, reason = decode(f.read())
    except OSError as e:
        img, reason = None, f"cannot be read ({e.strerror})"
    if img is None:
        return None, reason
    resize = options.resize
    if resize:
        # im2rec's rule: the shorter edge becomes `resize`, the other keeps the aspect ratio
        h, w = img.shape[:2]
        size = (resize, h * resize // w) if h > w else (w * resize // h, resize)
        if size[0] * size[1] > MAX_PIXELS:
            return None, (f"{size[0]} x {size[1]} pixels once resized, over the {MAX_PIXELS} "
                          "accepted")
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    params = ([cv2.IMWRITE_JPEG_QUALITY, options.quality] if options.encoding == ".jpg"
              else [cv2.IMWRITE_PNG_COMPRESSION, 3])
    ok, buf = cv2.imencode(options.encoding, img, params)
    if not ok:
        return None, "OpenCV could not encode it"
    return buf.tobytes(), ""


def pack_images(image_dir, out_prefix, options=PackOptions(), labels_file=None, workers=1,
                force=False, progress=False):
    """Pack ``image_dir`` into ``out_prefix``.{rec,idx,lst} and ``out_prefix``_classes.txt.

    Args:
        image_dir: folder of class sub-folders, or a flat folder if ``labels_file`` is given.
        out_prefix: output path without extension (``data/train`` -> ``data/train.rec``).
        options: :class:`PackOptions`: resize, JPEG quality, encoding, seed of the order.
        labels_file: lines ``filename label`` or ``filename classname`` for a flat folder.
        workers: processes that decode and encode; the output does not depend on it.
        force: overwrite existing outputs.
        progress: show a tqdm progress bar on stderr.

    Record ``i`` of the ``.rec`` has key and ``IRHeader.id`` ``i`` and a float label; a file
    OpenCV cannot read is skipped with a warning naming it and counted in the summary.
    Returns a :class:`PackSummary`; raises DataError (empty class folder, existing output
    without ``force``, nothing readable, bad arguments).
    """
    outputs = _checked_outputs(out_prefix)
    with FileLock(out_prefix + ".lock", out_prefix, DataError):
        existing = [p for p in outputs if os.path.exists(p)]
        if existing and not force:
            raise DataError(f"{existing[0]} already exists; pass --force to overwrite it")
        if labels_file:
            items, classes = list_with_labels(image_dir, labels_file)
        else:
            items, classes = list_class_folders(image_dir)
        # im2rec shuffles the list before packing, so a sequential reader sees mixed classes
        random.Random(options.seed).shuffle(items)
        _remove_stale_tmp(outputs)
        tmp = [f"{p}.tmp{os.getpid()}" for p in outputs]
        jobs = [(os.path.join(image_dir, rel), options) for rel, _ in items]
        try:
            with _encoded(jobs, workers, progress and f"packing {out_prefix}") as results:
                packed, skipped = _write_records(tmp, image_dir, items, results)
            if not packed:
                raise DataError(f"{image_dir}: no readable image ({len(skipped)} files "
                                "skipped)")
            empty = sorted(set(range(len(classes))) - {label for _, label, _ in packed})
            if empty:
                raise DataError(f"{image_dir}: class {classes[empty[0]]!r} (label {empty[0]}) "
                                "has no readable image, which would leave its label without "
                                "data; remove the class or add images")
            with open(tmp[2], "w", encoding="utf-8") as f:
                f.writelines(f"{k}\t{float(lab)}\t{rel}\n" for k, lab, rel in packed)
            with open(tmp[3], "w", encoding="utf-8") as f:
                f.writelines(f"{c}\n" for c in classes)
            _publish(tmp, outputs)
        finally:
            for t in tmp:
                if os.path.exists(t):
                    os.remove(t)
    return PackSummary(packed=len(packed), skipped=len(skipped), classes=classes,
                       paths=outputs, skipped_files=skipped)


def _checked_outputs(out_prefix):
    """The output paths (.rec, .idx, .lst, _classes.txt) of ``out_prefix``, after checking
    the output folder."""
    outputs = paths(out_prefix + ".rec")
    out_dir = os.path.dirname(os.path.abspath(out_prefix))
    if not os.path.isdir(out_dir):
        raise DataError(f"{out_dir}: output folder does not exist")
    return outputs


@contextlib.contextmanager
def _encoded(jobs, workers, progress):
    """The (bytes or None, reason) of each job in order, from ``workers`` processes; a tqdm
    bar titled ``progress`` (unless falsy)."""
    pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(_encode, jobs, chunksize=16) if pool else map(_encode, jobs)
        if progress:
            from tqdm import tqdm
            results = tqdm(results, total=len(jobs), desc=progress, unit="img")
        yield results
    finally:
        if pool is not None:
            pool.terminate()


def _write_records(tmp, image_dir, items, results):
    """Write the encoded images to the temporary .rec/.idx; returns (packed (key, label,
    relative path), skipped files)."""
    from mxnet import recordio  # the C++ library loads only when packing is asked for
    packed, skipped = [], []
    writer = recordio.MXIndexedRecordIO(tmp[1], tmp[0], "w")
    try:
        for (rel, label), (buf, reason) in zip(items, results):
            if buf is None:
                log.warning("skipping %s: %s", os.path.join(image_dir, rel), reason)
                skipped.append(os.path.join(image_dir, rel))
                continue
            key = len(packed)
            writer.write_idx(key, recordio.pack(recordio.IRHeader(0, float(label), key, 0), buf))
            packed.append((key, label, rel))
    finally:
        writer.close()
    return packed, skipped


def _publish(tmp, outputs):
    """Rename the finished temporary files over the outputs. The old .idx goes first and the
    new one comes last: a kill in between leaves a set without its .idx (which every reader
    refuses in one line), never a new .rec beside an old index."""
    idx = outputs[1]
    if os.path.exists(idx):
        os.remove(idx)
    for t, p in sorted(zip(tmp, outputs), key=lambda pair: pair[1] == idx):
        os.replace(t, p)


def _remove_stale_tmp(outputs):
    """Temporary outputs of a packer that was killed (its process is gone)."""
    for out in outputs:
        folder, name = os.path.split(os.path.abspath(out))
        for entry in os.listdir(folder):
            pid = entry[len(name) + len(".tmp"):]
            if entry.startswith(name + ".tmp") and pid.isdigit() and not _alive(int(pid)):
                os.remove(os.path.join(folder, entry))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_workers():
    """Worker processes for packing: one per CPU this process may use."""
    return usable_cpus()

