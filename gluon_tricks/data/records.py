"""Cheap facts about a packed RecordIO set (``X.rec`` + ``X.idx``, optional ``X.lst`` and
``X_classes.txt``), read without decoding a single image, and the checks that turn a bad
file into a one-line :class:`DataError` before MXNet's C++ iterator sees it (its own errors
are a C++ stack trace from a background thread).

File layout, as MXNet's ``im2rec`` writes it:

- ``X.rec``: records ``magic (u32) | cflag << 29 | length (u32) | payload | pad to 4 bytes``;
  a payload is an ``IRHeader`` (``flag u32, label f32, id u64, id2 u64``) then the image.
- ``X.idx``: one ``key<TAB>byte offset`` line per record.
- ``X.lst``: one ``key<TAB>label<TAB>relative path`` line per record (written by our packer,
  for people and MXNet's tools; labels are always read from the ``.rec`` itself, as a
  ``.lst`` may be stale).
- ``X.labels.json``: the label set, cached with the ``.rec``'s size, time and record count.
- ``X_classes.txt``: one class name per line; line i is the name of label i.
"""
import json
import math
import os
import struct

from ..cpus import usable_cpus
from ..errors import UserError

RECORD_MAGIC = 0xCED7230A
_REC_HEAD = struct.Struct("<II")          # magic, cflag << 29 | length
_IR_HEAD = struct.Struct("<IfQQ")         # mx.recordio's IRHeader: flag, label, id, id2
_LENGTH_MASK = (1 << 29) - 1
_SPOT_CHECKS = 1000  # records whose header is checked by check_rec (first, last, evenly spaced)


class DataError(UserError):
    """A data file is missing, malformed or inconsistent; the message is one line naming it."""


def paths(rec_path):
    """(rec, idx, lst, classes) paths of the set whose records live in ``rec_path``."""
    stem = os.path.splitext(rec_path)[0] if rec_path.endswith(".rec") else rec_path
    return stem + ".rec", stem + ".idx", stem + ".lst", stem + "_classes.txt"


def read_index(rec_path):
    """The ``.idx`` beside ``rec_path`` as a list of (key, byte offset) in file order.

    Raises DataError if the ``.rec`` or ``.idx`` is missing or the ``.idx`` is malformed."""
    rec, idx, _, _ = paths(rec_path)
    if not os.path.isfile(rec):
        raise DataError(f"{rec}: no such RecordIO file (pack one with tools/pack_rec.py)")
    if not os.path.isfile(idx):
        raise DataError(f"{idx}: index missing beside {rec} (re-pack with tools/pack_rec.py, "
                        "or rebuild it with mxnet's tools/rec2idx.py)")
    entries = []
    with open(idx, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            try:
                entries.append((int(fields[0]), int(fields[1])))
                if entries[-1][1] < 0:
                    raise ValueError
            except (ValueError, IndexError):
                raise DataError(f"{idx}:{n}: expected 'key<TAB>offset' (a byte offset >= 0), "
                                f"got {line.strip()[:60]!r}") from None
    if not entries:
        raise DataError(f"{idx}: index is empty, the set holds no record")
    return entries


def _read_header(f, offset):
    """(cflag, payload length, IRHeader fields or None) of the record at ``offset``."""
    f.seek(offset)
    head = f.read(_REC_HEAD.size + _IR_HEAD.size)
    if len(head) < _REC_HEAD.size:
        return None
    magic, lrec = _REC_HEAD.unpack_from(head)
    if magic != RECORD_MAGIC:
        return None
    ir = (_IR_HEAD.unpack_from(head, _REC_HEAD.size)
          if len(head) == _REC_HEAD.size + _IR_HEAD.size else None)
    return lrec >> 29, lrec & _LENGTH_MASK, ir


def check_rec(rec_path):
    """Check that ``rec_path`` and its ``.idx`` exist and agree, cheaply: the index parses,
    every offset lies inside the ``.rec``, and the first, the last and up to 1000 evenly
    spaced records start with a RecordIO header whose payload fits in the file (which catches
    a truncated or overwritten ``.rec``). Returns the number of records.

    Raises DataError with one line naming the file otherwise."""
    rec, idx, _, _ = paths(rec_path)
    entries = read_index(rec_path)
    size = os.path.getsize(rec)
    offsets = sorted(off for _, off in entries)
    if offsets[-1] >= size:
        raise DataError(f"{rec}: truncated ({size} bytes) or {idx} belongs to another file "
                        f"(a record starts at byte {offsets[-1]}); re-pack it")
    step = max(1, len(offsets) // _SPOT_CHECKS)
    probe = sorted(set(range(0, len(offsets), step)) | {len(offsets) - 1})
    with open(rec, "rb") as f:
        for i in probe:
            head = _read_header(f, offsets[i])
            if head is None:
                raise DataError(f"{rec}: no record header at byte {offsets[i]} (index entry "
                                f"{i}): the file is corrupt or {idx} belongs to another file")
            cflag, length, _ = head
            end = offsets[i] + _REC_HEAD.size + length
            # a record that is not split (cflag 0) must end before the next one starts
            limit = offsets[i + 1] if i + 1 < len(offsets) else size
            if cflag == 0 and end > limit:
                raise DataError(f"{rec}: record at byte {offsets[i]} needs {length} bytes but "
                                f"the file ends at {size}: truncated, re-pack it"
                                if limit == size else
                                f"{rec}: record at byte {offsets[i]} overlaps the next one; "
                                "the file is corrupt, re-pack it")
    return len(entries)


def count_records(rec_path):
    """Number of records in ``rec_path`` (int), from its ``.idx``; raises DataError."""
    return len(read_index(rec_path))


def labels(rec_path):
    """Labels of every record, as a list of float in ``.idx`` order, read from each record's
    own header in the ``.rec`` (one 32-byte read per record). Raises DataError."""
    entries = read_index(rec_path)
    rec = paths(rec_path)[0]
    out = []
    with open(rec, "rb") as f:
        for key, off in entries:
            head = _read_header(f, off)
            if head is None or head[2] is None:
                raise DataError(f"{rec}: no record header at byte {off} (key {key}); re-pack it")
            flag, label = head[2][0], head[2][1]
            if flag > 0:  # multi-label records keep their labels after the header
                f.seek(off + _REC_HEAD.size + _IR_HEAD.size)
                label = struct.unpack("<f", f.read(4))[0]
            out.append(label)
    return out


def label_set(rec_path):
    """Sorted list of the distinct class labels (ints) of ``rec_path``, from the records
    themselves. A label that is not a whole number >= 0 (or NaN) is a DataError naming the
    record.

    The set is cached beside the ``.rec`` (``<name>.labels.json``) and the cache is used
    only while the ``.rec`` has the size, modification time and record count it was made
    from, so an ImageNet-sized set is read once, not at every start of every rank."""
    rec = paths(rec_path)[0]
    cache = os.path.splitext(rec)[0] + ".labels.json"
    stat = os.stat(rec) if os.path.isfile(rec) else None
    count = len(read_index(rec_path))
    stamp = stat and dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns, records=count)
    try:
        with open(cache) as f:
            cached = json.load(f)
        if cached.get("rec") == stamp:
            return cached["labels"]
    except (OSError, ValueError, AttributeError):
        pass
    found = set()
    for i, x in enumerate(labels(rec_path)):
        if not math.isfinite(x) or x != int(x) or x < 0:
            raise DataError(f"{rec}: record {i} has label {x!r}, not a class index (a whole "
                            "number, 0 or more); re-pack it with class indices as labels")
        found.add(int(x))
    result = sorted(found)
    try:
        tmp = f"{cache}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(dict(rec=stamp, labels=result), f)
        os.replace(tmp, cache)
    except OSError:  # a read-only data folder: read the headers again next time
        pass
    return result


def _problem(fd, offset):
    """Why the image of the record at ``offset`` is not usable (:func:`.images.image_problem`),
    or None (split records, which only images over 512 MiB need, are not checked)."""
    from .images import image_problem

    head = os.pread(fd, _REC_HEAD.size + _IR_HEAD.size, offset)
    magic, lrec = _REC_HEAD.unpack_from(head)
    if lrec >> 29:
        return None
    flag = _IR_HEAD.unpack_from(head, _REC_HEAD.size)[0]
    start = _IR_HEAD.size + 4 * flag  # multi-label records keep their labels first
    payload = os.pread(fd, (lrec & _LENGTH_MASK) - start,
                       offset + _REC_HEAD.size + start)
    return image_problem(payload)


def check_images(rec_path, sample=None, num_parts=1, part_index=0, threads=None):
    """Check the images of shard ``part_index`` of ``num_parts`` of ``rec_path`` (all of
    them, or ``sample`` evenly spaced ones) with the check every tool runs
    (:func:`.images.image_problem`: OpenCV decodes it, as MXNet's iterator will; not a JPEG
    cut short, which decodes without an error): a bad image is a DataError naming the file,
    the record and why, before any work starts (MXNet's iterator would end the process with
    no message, possibly after an epoch). Runs on ``threads`` threads (default: every core;
    OpenCV decodes outside the GIL). Returns the number of images checked."""
    from concurrent.futures import ThreadPoolExecutor

    rec = paths(rec_path)[0]
    entries = read_index(rec_path)
    begin, end = shard_range(len(entries), num_parts, part_index)
    positions = range(begin, end) if sample != 0 else []
    if sample is not None and sample < len(positions):
        step = len(positions) / sample
        positions = sorted({begin + int(i * step) for i in range(sample)} | {end - 1})
    fd = os.open(rec, os.O_RDONLY)
    try:
        with ThreadPoolExecutor(threads or usable_cpus()) as pool:
            problems = list(pool.map(lambda i: _problem(fd, entries[i][1]), positions))
    finally:
        os.close(fd)
    bad = [(i, why) for i, why in zip(positions, problems) if why]
    if bad:
        (first, why), more = bad[0], f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DataError(f"{rec}: the image of record {first} (key {entries[first][0]}, byte "
                        f"{entries[first][1]}){more} is {why}; re-pack the set "
                        "(tools/pack_rec.py skips unusable images)")
    return len(positions)


def check_labels(rec_path, classes, every_class=False, flag="--set classes"):
    """Every label of ``rec_path`` must be a class index in [0, classes); with
    ``every_class`` (a training set) every class must also occur. DataError otherwise, one
    line with the ``classes`` value the labels suggest (as ``flag``=N), or, with ``flag``
    None (the classes of trained weights, which no flag changes), saying so."""
    labels = label_set(rec_path)
    fits = labels[0] >= 0 and labels[-1] < classes
    if fits and (not every_class or len(labels) == classes):
        return
    if every_class and len(labels) == 1:
        hint = "; a classifier learns nothing from a training set of one class"
    elif flag is None:
        hint = f"; the network has {classes} classes: score it on a set of those classes"
    elif labels[-1] + 1 != classes:
        hint = f"; {flag}={labels[-1] + 1}"
    else:
        hint = ""
    raise DataError(f"{rec_path}: holds {len(labels)} classes (labels {labels[0]}.."
                    f"{labels[-1]}) that do not fit classes={classes}{hint}")


def check_classes(rec_path, classes, names_file=None):
    """The class list of ``rec_path`` (its ``X_classes.txt``, if it has one) must have
    ``classes`` names and, if the names file ``names_file`` exists (the training set's
    ``X_classes.txt``), the same names in the same order: labels are positions in the
    list, so a set packed without one class shifts every label after it, silently. A set
    without ``X_classes.txt`` (packed by another tool) is left to :func:`check_labels`.
    DataError otherwise, one line naming both lists and the first class that differs."""
    mine_file = classes_file(rec_path)
    mine = read_classes(rec_path)
    if mine is None:
        return
    fix = "pack both sets from the same class folders (a label is a position in the list)"
    if names_file and os.path.isfile(names_file):
        theirs = read_class_names(names_file)
        if mine != theirs:
            i = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b),
                     min(len(mine), len(theirs)))
            there = lambda names: repr(names[i])[:60] if i < len(names) else "no class"
            raise DataError(f"{mine_file}: class {i} is {there(mine)} but {there(theirs)} in "
                            f"{names_file} ({len(mine)} classes against {len(theirs)}); {fix}")
    if len(mine) != classes:
        raise DataError(f"{mine_file}: lists {len(mine)} classes where {classes} are expected; "
                        f"{fix}")


def classes_file(rec_path):
    """The ``X_classes.txt`` of the set whose records live in ``rec_path`` (it may not
    exist)."""
    return paths(rec_path)[3]


def read_classes(rec_path):
    """Class names of ``rec_path`` from ``X_classes.txt`` (index = label), or None."""
    classes = paths(rec_path)[3]
    return read_class_names(classes) if os.path.isfile(classes) else None


def read_class_names(path):
    """The class names of a names file (one a line, in label order; blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def shard_range(num_records, num_parts, part_index):
    """[begin, end) of record positions (in ``.idx`` order) that shard ``part_index`` of
    ``num_parts`` reads: MXNet's own rule (dmlc-core IndexedRecordIOSplitter), a step of
    ceil(num_records / num_parts), so that both backends read the same shards."""
    if not 0 <= part_index < num_parts:
        raise DataError(f"part_index {part_index} is not in [0, num_parts={num_parts})")
    step = (num_records + num_parts - 1) // num_parts
    return min(part_index * step, num_records), min((part_index + 1) * step, num_records)
