"""tools/imagenet_val_labels.py on a small devkit written here with scipy.io.savemat: the
devkit's ILSVRC2012 IDs are not the sorted-WNID order, and the labels must follow the WNIDs.
And the Places365 file lists as docs/reproduce.md packs them."""
import builtins

import numpy as np
import pytest

from helpers import assert_one_line_error

scipy_io = pytest.importorskip("scipy.io")

# (ILSVRC2012 ID, WNID) of the leaves, in ID order as meta.mat lists them, and not sorted by
# WNID: sorted, the WNIDs are n01 < n02 < ... < n07, so ID 1 (n05) is label 4, ID 2 (n01)
# label 0, and so on. IDs 1001, 1002 are inner WordNet nodes (children > 0).
LEAVES = [(1, "n05"), (2, "n01"), (3, "n07"), (4, "n03"), (5, "n02"), (6, "n06"), (7, "n04")]
INNER = [(1001, "n00001"), (1002, "n00002")]
LABEL_OF_ID = {1: 4, 2: 0, 3: 6, 4: 2, 5: 1, 6: 5, 7: 3}  # by hand from the sorted WNIDs
GROUND_TRUTH = [3, 1, 2, 2, 7, 5, 4, 6, 1]


def write_devkit(root, leaves=LEAVES, ground_truth=GROUND_TRUTH):
    data = root / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    synsets = np.zeros((len(leaves) + len(INNER), 1), dtype=[
        ("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")])
    for i, (class_id, wnid) in enumerate(leaves + INNER):
        synsets[i, 0] = (np.array([[class_id]]), np.array([wnid]), np.array([f"class {wnid}"]),
                         np.array([[0 if class_id <= 1000 else 3]]))
    scipy_io.savemat(str(data / "meta.mat"), {"synsets": synsets})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text(
        "".join(f"{i}\n" for i in ground_truth))
    return str(data.parent)


@pytest.fixture
def small_classes(monkeypatch, tool):
    module = tool("imagenet_val_labels")
    monkeypatch.setattr(module, "CLASSES", len(LEAVES))
    return module


def test_labels_follow_sorted_wnids_not_ids(small_classes, tmp_path):
    devkit = write_devkit(tmp_path)
    out = tmp_path / "val_labels.txt"
    assert small_classes.main([devkit, "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines == [f"ILSVRC2012_val_{i:08d}.JPEG {LABEL_OF_ID[c]}"
                     for i, c in enumerate(GROUND_TRUTH, start=1)]
    # the classic silent error, ID - 1, would have given other labels for most images
    assert sum(int(line.split()[1]) != c - 1 for line, c in zip(lines, GROUND_TRUTH)) >= 7


def test_train_dir_check(small_classes, tmp_path):
    devkit = write_devkit(tmp_path)
    train = tmp_path / "train"
    for _, wnid in LEAVES:
        (train / wnid).mkdir(parents=True)
    out = str(tmp_path / "labels.txt")
    assert small_classes.main([devkit, "--out", out, "--train-dir", str(train)]) == 0
    (train / "n04").rmdir()
    with pytest.raises(small_classes.UserError, match="missing e.g. .'n04'."):
        small_classes.main([devkit, "--out", out, "--train-dir", str(train)])


@pytest.mark.parametrize("damage, message", [
    ("ground_truth", "ID 9 is not one of the 7 classes"),
    ("no_meta", "no meta.mat in it or in its data/ folder"),
    ("leaves", "expected leaf synsets with IDs 1..7"),
])
def test_errors_are_one_line(small_classes, tmp_path, capsys, damage, message):
    if damage == "leaves":
        devkit = write_devkit(tmp_path, leaves=LEAVES[:-1])
    else:
        devkit = write_devkit(tmp_path, ground_truth=GROUND_TRUTH + [9])
    if damage == "no_meta":
        (tmp_path / "ILSVRC2012_devkit_t12" / "data" / "meta.mat").unlink()
    assert small_classes.run_cli(small_classes.main, [devkit, "--out",
                                                      str(tmp_path / "x.txt")]) == 2
    assert_one_line_error(capsys.readouterr().err, message)


def test_without_scipy_the_error_names_the_extra(small_classes, tmp_path, monkeypatch, capsys):
    devkit = write_devkit(tmp_path)
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_scipy)
    assert small_classes.run_cli(small_classes.main, [devkit]) == 2
    assert_one_line_error(capsys.readouterr().err, "meta.mat", 'gluon-tricks[imagenet]')


def test_places365_file_lists_as_documented(tmp_path):
    """Places365-Standard's training list names images "/a/airfield/00000001.jpg 0" under
    data_256/: with the leading "/" removed (docs/reproduce.md's sed) the packer's label
    reader takes it, nested folders and all; as shipped it names a file outside the folder.
    The validation list ("Places365_val_00000001.jpg 165") is read as it is."""
    from gluon_tricks.data.pack import list_with_labels
    from gluon_tricks.data import DataError
    data = tmp_path / "data_256"
    for rel in ("a/airfield/00000001.jpg", "b/bakery/shop/00000002.jpg"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(b"")
    shipped = "/a/airfield/00000001.jpg 0\n/b/bakery/shop/00000002.jpg 2\n"
    (tmp_path / "shipped.txt").write_text(shipped)
    with pytest.raises(DataError, match="is not inside"):
        list_with_labels(str(data), str(tmp_path / "shipped.txt"))
    (tmp_path / "train.txt").write_text(
        "".join(line[1:] + "\n" for line in shipped.splitlines()))  # sed 's#^/##'
    items, classes = list_with_labels(str(data), str(tmp_path / "train.txt"))
    assert items == [("a/airfield/00000001.jpg", 0), ("b/bakery/shop/00000002.jpg", 2)]
    assert classes == ["0", "1", "2"]
    val = tmp_path / "val_256"
    val.mkdir()
    (val / "Places365_val_00000001.jpg").write_bytes(b"")
    (tmp_path / "places365_val.txt").write_text("Places365_val_00000001.jpg 165\n")
    items, classes = list_with_labels(str(val), str(tmp_path / "places365_val.txt"))
    assert items == [("Places365_val_00000001.jpg", 165)] and len(classes) == 166
