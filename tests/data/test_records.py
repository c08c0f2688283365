"""Cheap facts of a .rec (count, labels) and one-line errors for bad files, raised before
MXNet's C++ iterator sees them."""
import os
import shutil

import pytest

from gluon_tricks.data import (DataConfig, DataError, check_rec, count_records, label_set,
                               make_loaders, num_classes, read_classes, shard_range)


def one_line_naming(err, path):
    msg = str(err.value)
    return "\n" not in msg and path in msg


def test_count_and_labels_without_lst(numbered_rec):
    # written by mx.recordio directly: no .lst, so the labels come from the record headers
    assert not os.path.exists(numbered_rec[:-4] + ".lst")
    assert count_records(numbered_rec) == 37 == check_rec(numbered_rec)
    assert label_set(numbered_rec) == list(range(37))


def test_demo_labels_from_lst_and_classes(demo_dir):
    rec = os.path.join(demo_dir, "val.rec")
    assert count_records(rec) == 360
    assert label_set(rec) == list(range(10)) and num_classes(rec) == 10
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
    with pytest.raises(DataError, match="num_classes=10"):
        make_loaders(DataConfig(input_size=16), numbered_rec, numbered_rec, 4, num_classes=10)


@pytest.mark.parametrize("n,parts", [(37, 1), (37, 3), (10, 4), (1281167, 8), (50000, 7)])
def test_shards_are_disjoint_and_cover(n, parts):
    covered = []
    for p in range(parts):
        b, e = shard_range(n, parts, p)
        covered.extend(range(b, e))
    assert covered == list(range(n))
