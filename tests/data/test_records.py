"""Cheap facts of a .rec (count, labels) and one-line errors for bad files, raised before
MXNet's C++ iterator sees them."""
import json
import os
import shutil

import numpy as np
import pytest

from gluon_tricks.data import (DataConfig, DataError, check_images, check_labels, check_rec,
                               count_records, label_set, make_loaders, read_classes,
                               shard_range)
from gluon_tricks.data.records import read_index

from helpers import write_rec


def one_line_naming(err, path):
    msg = str(err.value)
    return "\n" not in msg and path in msg


def test_count_and_labels_without_lst(numbered_rec):
    # written by mx.recordio directly: no .lst, so the labels come from the record headers
    assert not os.path.exists(numbered_rec[:-4] + ".lst")
    assert count_records(numbered_rec) == 37 == check_rec(numbered_rec)
    assert label_set(numbered_rec) == list(range(37))


def test_labels_come_from_the_records_not_a_stale_lst(numbered_rec, tmp_path):
    """A .lst beside the .rec is not trusted (it may be stale); the label cache is used only
    while the .rec is the one it was made from."""
    rec = copy_set(numbered_rec, tmp_path)
    with open(rec[:-4] + ".lst", "w") as f:
        f.writelines(f"{i}\t{i + 5}\timg{i}.jpg\n" for i in range(37))
    assert label_set(rec) == list(range(37))
    with open(rec[:-4] + ".labels.json") as f:
        assert json.load(f)["labels"] == list(range(37))
    write_rec(rec[:-4], [np.zeros((8, 8, 3), np.uint8)] * 3, [0, 1, 12])  # rewritten
    assert label_set(rec) == [0, 1, 12]
    with pytest.raises(DataError, match="--set classes=13"):
        check_labels(rec, 10, every_class=True)


@pytest.mark.parametrize("bad", [-1.0, 2.5, float("nan")])
def test_labels_that_are_no_class_index_are_refused(tmp_path, bad):
    """A label -1 was reported as "11 classes (labels -1..9)"; it names its record too."""
    rec = write_rec(str(tmp_path / "bad"), [np.zeros((8, 8, 3), np.uint8)] * 3, [0, bad, 1])
    with pytest.raises(DataError, match=f"record 1 has label {bad!r}"):
        label_set(rec)
    with pytest.raises(DataError, match="record 1 has label"):
        check_labels(rec, 2)


def test_a_training_set_of_one_class_is_named_as_such(tmp_path):
    """Its labels [3] suggested --set classes=4, which the every-class check refuses next."""
    rec = write_rec(str(tmp_path / "one"), [np.zeros((8, 8, 3), np.uint8)] * 3, [3, 3, 3])
    with pytest.raises(DataError) as e:
        check_labels(rec, 10, every_class=True)
    assert "one class" in str(e.value) and "--set classes" not in str(e.value)
    check_labels(rec, 10)  # a validation set of one class is scored


def test_demo_labels_and_classes(demo_dir):
    rec = os.path.join(demo_dir, "val.rec")
    assert count_records(rec) == 360
    assert label_set(rec) == list(range(10))
    assert read_classes(rec) == [str(d) for d in range(10)]


def copy_set(rec, tmp_path, name="copy"):
    dst = str(tmp_path / name)
    shutil.copy(rec, dst + ".rec")
    shutil.copy(rec[:-4] + ".idx", dst + ".idx")
    return dst + ".rec"


def test_missing_rec_and_wrong_path(tmp_path):
    for path in (str(tmp_path / "nope.rec"), str(tmp_path)):
        with pytest.raises(DataError) as e:
            check_rec(path)
        assert one_line_naming(e, path)


def test_missing_idx(numbered_rec, tmp_path):
    rec = copy_set(numbered_rec, tmp_path)
    os.remove(rec[:-4] + ".idx")
    with pytest.raises(DataError, match="index missing") as e:
        check_rec(rec)
    assert one_line_naming(e, rec[:-4] + ".idx")


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_rec(numbered_rec, tmp_path, keep):
    rec = copy_set(numbered_rec, tmp_path)
    size = os.path.getsize(rec)
    with open(rec, "r+b") as f:
        f.truncate(int(size * keep))
    with pytest.raises(DataError, match="truncated") as e:
        check_rec(rec)
    assert one_line_naming(e, rec)


def test_corrupt_rec_and_foreign_idx(numbered_rec, tmp_path):
    rec = copy_set(numbered_rec, tmp_path)
    with open(rec, "r+b") as f:
        f.write(b"\0" * 64)  # overwrite the first record's header
    with pytest.raises(DataError, match="corrupt") as e:
        check_rec(rec)
    assert one_line_naming(e, rec)
    bad_idx = copy_set(numbered_rec, tmp_path, "garbled")
    with open(bad_idx[:-4] + ".idx", "w") as f:
        f.write("0\tnot-a-number\n")
    with pytest.raises(DataError, match="key<TAB>offset"):
        check_rec(bad_idx)


def test_loaders_check_files_first(numbered_rec, tmp_path):
    rec = copy_set(numbered_rec, tmp_path)
    os.remove(rec[:-4] + ".idx")
    with pytest.raises(DataError) as e:
        make_loaders(DataConfig(input_size=16), numbered_rec, rec, 4)
    assert one_line_naming(e, rec[:-4] + ".idx")



def test_labels_must_be_classes_of_the_recipe(numbered_rec):
    """numbered_rec holds labels 0..36: they fit 37 or more classes, and a training set must
    hold every class; the hint names the number of classes the labels suggest."""
    check_labels(numbered_rec, 37, every_class=True)
    check_labels(numbered_rec, 40)
    with pytest.raises(DataError, match="classes=10; --set classes=37"):
        check_labels(numbered_rec, 10)
    with pytest.raises(DataError, match="classes=40; --set classes=37"):
        check_labels(numbered_rec, 40, every_class=True)


@pytest.mark.parametrize("n,parts", [(37, 1), (37, 3), (10, 4), (1281167, 8), (50000, 7)])
def test_shards_are_disjoint_and_cover(n, parts):
    covered = []
    for p in range(parts):
        b, e = shard_range(n, parts, p)
        covered.extend(range(b, e))
    assert covered == list(range(n))


def test_undecodable_image_is_found_before_training(numbered_rec, tmp_path):
    """A record whose JPEG bytes are garbage (same length, so the .idx still fits): named
    with its record number, whether all images or a sample that holds it are checked."""
    rec = copy_set(numbered_rec, tmp_path)
    assert check_images(rec) == 37
    offset = read_index(rec)[20][1]
    with open(rec, "r+b") as f:
        f.seek(offset + 8 + 24 + 10)  # record header, IRHeader, then into the JPEG
        f.write(b"\0" * 200)
    with pytest.raises(DataError, match="record 20 "):
        check_images(rec)
    with pytest.raises(DataError, match="record 20 "):
        check_images(rec, num_parts=2, part_index=1)  # records 19..36
    assert check_images(rec, num_parts=2, part_index=0) == 19
    assert check_images(rec, sample=3) == 4  # 0, 12, 24 and the last: 20 not among them
    assert check_images(rec, sample=0) == 0


@pytest.mark.parametrize("content", [b"0\t-8\n", b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage\n"],
                         ids=["negative offset", "binary garbage"])
def test_bad_idx_is_one_line(numbered_rec, tmp_path, content):
    rec = copy_set(numbered_rec, tmp_path)
    with open(rec[:-4] + ".idx", "wb") as f:
        f.write(content)
    with pytest.raises(DataError) as e:
        check_rec(rec)
    assert one_line_naming(e, rec[:-4] + ".idx")


def test_a_jpeg_cut_short_in_a_record_is_found(tmp_path):
    """A record holding the first half of a JPEG (which MXNet's decoder takes without an
    error): named as cut short, with its record number."""
    from mxnet import recordio
    from helpers import cut_in_half, jpeg_bytes
    prefix = str(tmp_path / "cut")
    w = recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
    for i in range(4):
        data = jpeg_bytes(i)
        w.write_idx(i, recordio.pack(recordio.IRHeader(0, float(i), i, 0),
                                     cut_in_half(data) if i == 2 else data))
    w.close()
    with pytest.raises(DataError, match="record 2 .*cut short") as e:
        check_images(prefix + ".rec")
    assert one_line_naming(e, prefix + ".rec")


@pytest.fixture(scope="module")
def class_lists(tmp_path_factory):
    """Packed sets: ten classes, the same without class3, the first five, and a set
    packed by another tool (no _classes.txt)."""
    from helpers import CLASSES, pack_classes
    root = tmp_path_factory.mktemp("class_lists")
    sets = {name: pack_classes(str(root / name), names, per_class=1)
            for name, names in (("full", CLASSES), ("other", CLASSES),
                                ("no_three", CLASSES[:3] + CLASSES[4:]), ("five", CLASSES[:5]))}
    sets["bare"] = write_rec(str(root / "bare"), [np.zeros((8, 8, 3), np.uint8)] * 3, [0, 1, 2])
    return sets


def test_class_lists_that_agree_pass(class_lists):
    from gluon_tricks.data import check_classes, classes_file
    check_classes(class_lists["other"], 10, classes_file(class_lists["full"]))
    check_classes(class_lists["bare"], 10, classes_file(class_lists["full"]))  # nothing to read
    check_classes(class_lists["full"], 10, classes_file(class_lists["bare"]))  # nor here


def test_a_set_packed_without_a_class_is_named_with_the_first_class_that_differs(class_lists):
    """Without class3, every later label is shifted by one: the message names both lists
    and class 3 (class4 here, class3 there)."""
    from gluon_tricks.data import check_classes, classes_file
    train = classes_file(class_lists["full"])
    with pytest.raises(DataError) as e:
        check_classes(class_lists["no_three"], 10, train)
    msg = str(e.value)
    assert one_line_naming(e, classes_file(class_lists["no_three"])) and train in msg
    assert "class 3 is 'class4' but 'class3'" in msg and "9 classes against 10" in msg
    with pytest.raises(DataError, match="class 5 is no class but 'class5'"):
        check_classes(class_lists["five"], 10, train)
    with pytest.raises(DataError, match="lists 5 classes where 10 are expected"):
        check_classes(class_lists["five"], 10)
