"""The packer against what it was given: images and labels read back with mx.recordio
itself, classes.txt, the label-file layout, and its refusals."""
import logging
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mxnet import recordio

from gluon_tricks.data import DataError
from gluon_tricks.data.pack import PackOptions, pack_images

from helpers import assert_one_line_error, png_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_back(prefix):
    """{relative path from the .lst: (RGB image, label)} decoded with mx.recordio."""
    lst = {}
    with open(prefix + ".lst") as f:
        for line in f:
            key, label, rel = line.rstrip("\n").split("\t")
            lst[int(key)] = (float(label), rel)
    reader = recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    out = {}
    for key in reader.keys:
        header, img = recordio.unpack_img(reader.read_idx(key), iscolor=1)
        assert header.id == key
        assert header.label == lst[key][0]
        out[lst[key][1]] = (img[:, :, ::-1], header.label)
    reader.close()
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_round_trip_png_is_exact(class_folder, tmp_path, workers):
    folder, truth = class_folder
    prefix = str(tmp_path / "set")
    summary = pack_images(folder, prefix, PackOptions(encoding=".png", seed=1), workers=workers)
    assert summary.packed == len(truth) and summary.skipped == 0
    back = read_back(prefix)
    assert sorted(back) == sorted(truth)
    for rel, (img, label) in truth.items():
        np.testing.assert_array_equal(back[rel][0], img)
        assert back[rel][1] == label
    with open(prefix + "_classes.txt") as f:
        assert f.read().split("\n") == ["apple", "kiwi", "zebra", ""]
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_round_trip_jpeg_and_resize(class_folder, tmp_path):
    folder, truth = class_folder
    prefix = str(tmp_path / "set")
    pack_images(folder, prefix, PackOptions(quality=100, resize=40))
    back = read_back(prefix)
    for rel, (img, label) in truth.items():
        h, w = img.shape[:2]
        got = back[rel][0]
        assert min(got.shape[:2]) == 40  # short edge resized, aspect kept
        assert abs(got.shape[1] / got.shape[0] - w / h) < 0.05
        assert back[rel][1] == label


def test_record_order_is_shuffled_by_seed(class_folder, tmp_path):
    folder, _ = class_folder
    orders = []
    for seed in (0, 0, 1):
        prefix = str(tmp_path / f"s{len(orders)}")
        pack_images(folder, prefix, PackOptions(encoding=".png", seed=seed))
        with open(prefix + ".lst") as f:
            orders.append([line.split("\t")[2] for line in f])
    assert orders[0] == orders[1] != orders[2]
    assert orders[0] != sorted(orders[0])


@pytest.mark.parametrize("by_name", [False, True])
def test_flat_folder_with_label_file(tmp_path, by_name):
    rng = np.random.default_rng(1)
    os.makedirs(tmp_path / "flat")
    names = {0: "cat", 1: "dog", 2: "eel"}
    truth, lines = {}, []
    for i in range(6):
        img = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "flat" / f"im{i}.png"), img[:, :, ::-1])
        label = (i * 2) % 3
        truth[f"im{i}.png"] = (img, label)
        lines.append(f"im{i}.png {names[label] if by_name else label}\n")
    (tmp_path / "labels.txt").write_text("".join(lines))
    prefix = str(tmp_path / "val")
    s = pack_images(str(tmp_path / "flat"), prefix, PackOptions(encoding=".png"),
                    labels_file=str(tmp_path / "labels.txt"))
    assert s.classes == (["cat", "dog", "eel"] if by_name else ["0", "1", "2"])
    back = read_back(prefix)
    for rel, (img, label) in truth.items():
        np.testing.assert_array_equal(back[rel][0], img)
        assert back[rel][1] == label


def test_unreadable_image_is_skipped_and_counted(class_folder, tmp_path, caplog):
    folder, truth = class_folder
    bad = os.path.join(folder, "kiwi", "broken.jpg")
    with open(bad, "w") as f:
        f.write("this is not a JPEG")
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data"):
        s = pack_images(folder, str(tmp_path / "set"), PackOptions(encoding=".png"))
    assert s.packed == len(truth) and s.skipped == 1 and s.skipped_files == [bad]
    assert any(bad in r.getMessage() for r in caplog.records)
    assert len(read_back(str(tmp_path / "set"))) == len(truth)


def test_empty_class_folder_is_an_error(class_folder, tmp_path):
    folder, _ = class_folder
    os.makedirs(os.path.join(folder, "empty"))
    with pytest.raises(DataError, match="empty class folder") as e:
        pack_images(folder, str(tmp_path / "set"))
    assert "\n" not in str(e.value) and "empty" in str(e.value)


def test_existing_output_needs_force(class_folder, tmp_path):
    folder, _ = class_folder
    prefix = str(tmp_path / "set")
    pack_images(folder, prefix, PackOptions(encoding=".png"))
    with pytest.raises(DataError, match="already exists.*--force"):
        pack_images(folder, prefix)
    assert pack_images(folder, prefix, PackOptions(encoding=".png"), force=True).packed == 12


def test_cli_prints_one_line_error_and_exits_2(class_folder, tmp_path):
    folder, _ = class_folder
    prefix = str(tmp_path / "set")
    tool = os.path.join(ROOT, "tools", "pack_rec.py")
    ok = subprocess.run([sys.executable, tool, folder, prefix, "--workers", "1"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "12 images, 3 classes, 0 skipped" in ok.stdout
    again = subprocess.run([sys.executable, tool, folder, prefix], capture_output=True, text=True)
    assert again.returncode == 2
    assert_one_line_error(again.stderr, prefix)


def test_images_below_a_class_folder_are_packed_with_its_label(class_folder, tmp_path):
    folder, truth = class_folder
    os.makedirs(os.path.join(folder, "kiwi", "more"))
    img = np.full((9, 7, 3), 200, np.uint8)
    cv2.imwrite(os.path.join(folder, "kiwi", "more", "x.png"), img)
    s = pack_images(folder, str(tmp_path / "set"), PackOptions(encoding=".png"))
    back = read_back(str(tmp_path / "set"))
    assert s.packed == len(truth) + 1 and back[os.path.join("kiwi", "more", "x.png")][1] == 1


def test_files_the_trainer_could_not_use_are_skipped_and_named(class_folder, tmp_path, caplog,
                                                               monkeypatch):
    """A JPEG cut short (OpenCV would decode it half grey), an image over the pixel limit
    (checked from its header, before decoding) and a name with a newline."""
    folder, truth = class_folder
    noise = np.random.default_rng(0).integers(0, 256, (40, 40, 3)).astype(np.uint8)
    whole = cv2.imencode(".jpg", noise)[1].tobytes()
    cut = os.path.join(folder, "apple", "cut.jpg")
    with open(cut, "wb") as f:
        f.write(whole[:len(whole) // 2])
    huge = os.path.join(folder, "apple", "huge.png")
    cv2.imwrite(huge, np.zeros((60, 50, 3), np.uint8))
    monkeypatch.setattr("gluon_tricks.data.images.MAX_PIXELS", 2999)  # 60 x 50 = 3000
    odd = os.path.join(folder, "apple", "new\nline.png")
    cv2.imwrite(odd, np.zeros((4, 4, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data"):
        s = pack_images(folder, str(tmp_path / "set"), PackOptions(encoding=".png"))
    assert s.packed == len(truth) and sorted(s.skipped_files) == sorted([cut, huge, odd])
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "cut short" in text and "50 x 60 pixels" in text and "newline" in text


def test_a_class_without_a_readable_image_is_an_error(class_folder, tmp_path):
    folder, _ = class_folder
    os.makedirs(os.path.join(folder, "mango"))
    with open(os.path.join(folder, "mango", "bad.jpg"), "w") as f:
        f.write("not an image")
    with pytest.raises(DataError, match="'mango' \\(label 2\\) has no readable image"):
        pack_images(folder, str(tmp_path / "set"))
    assert not [p for p in os.listdir(tmp_path) if p.startswith("set")]


def test_a_file_listed_twice_is_an_error(tmp_path):
    os.makedirs(tmp_path / "flat")
    cv2.imwrite(str(tmp_path / "flat" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "labels.txt").write_text("a.png 0\na.png 1\n")
    with pytest.raises(DataError, match=r"labels.txt:2: 'a.png' is listed again \(first"):
        pack_images(str(tmp_path / "flat"), str(tmp_path / "set"),
                    labels_file=str(tmp_path / "labels.txt"))


def test_temporary_files_of_a_killed_packer_are_removed(class_folder, tmp_path):
    folder, _ = class_folder
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"set.rec.tmp{dead}"
    stale.write_bytes(b"half a set")
    mine = tmp_path / f"set.rec.tmp{os.getpid()}x"  # not a packer's name: left alone
    mine.write_bytes(b"")
    pack_images(folder, str(tmp_path / "set"), PackOptions(encoding=".png"))
    assert not stale.exists() and mine.exists()


def test_empty_and_huge_files_are_skipped_and_named_before_decoding(class_folder, tmp_path,
                                                                    caplog):
    """A 0-byte file (OpenCV raises on it) and a PNG header claiming 60000 x 60000 pixels
    (Pillow's decompression-bomb error): warnings naming them, the rest packed."""
    folder, truth = class_folder
    empty = os.path.join(folder, "apple", "empty.jpg")
    bomb = os.path.join(folder, "kiwi", "b.png")
    open(empty, "wb").close()
    with open(bomb, "wb") as f:
        f.write(png_bytes(60000, 60000, whole=False))
    with caplog.at_level(logging.WARNING, logger="gluon_tricks.data"):
        s = pack_images(folder, str(tmp_path / "set"), PackOptions(encoding=".png"), workers=2)
    assert s.packed == len(truth) and sorted(s.skipped_files) == sorted([empty, bomb])
    text = " ".join(r.getMessage() for r in caplog.records)
    assert f"{empty}: an empty file" in text and f"{bomb}: more pixels than Pillow" in text


def test_a_resize_past_the_pixel_limit_is_refused(class_folder, tmp_path):
    """--resize 100000 made every image 10^10 pixels (OpenCV's traceback, in a worker)."""
    folder, _ = class_folder
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError) as e:
        pack_images(folder, str(out / "set"), PackOptions(resize=100000))
    assert_one_line_error(f"error: {e.value}", "resize 100000", "at most 9459")
    assert not os.listdir(out)


def test_class_folders_the_lists_cannot_hold_or_that_loop_are_refused(class_folder, tmp_path):
    """A class name with a line break or tab corrupted _classes.txt and the .lst; a class
    folder linking to the image folder packed every image twice."""
    folder, _ = class_folder
    out = tmp_path / "out"
    out.mkdir()
    for name in ("new\nline", "tab\there"):
        os.makedirs(os.path.join(folder, name))
        cv2.imwrite(os.path.join(folder, name, "x.png"), np.zeros((4, 4, 3), np.uint8))
        with pytest.raises(DataError) as e:
            pack_images(folder, str(out / "set"))
        assert_one_line_error(f"error: {e.value}", repr(os.path.join(folder, name)),
                              "rename it")
        shutil.rmtree(os.path.join(folder, name))
    os.symlink(folder, os.path.join(folder, "loop"))
    with pytest.raises(DataError) as e:
        pack_images(folder, str(out / "set"))
    assert_one_line_error(f"error: {e.value}", os.path.join(folder, "loop"), "twice")
    assert not os.listdir(out)


@pytest.mark.parametrize("name", ["../outside.png", "/etc/hostname", "a/../../x.png"])
def test_label_lines_naming_files_outside_the_folder_are_refused(tmp_path, name):
    flat = tmp_path / "flat"
    flat.mkdir()
    cv2.imwrite(str(flat / "a.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "outside.png"), np.zeros((4, 4, 3), np.uint8))
    labels = tmp_path / "labels.txt"
    labels.write_text(f"a.png 0\n{name} 1\n")
    with pytest.raises(DataError) as e:
        pack_images(str(flat), str(tmp_path / "set"), labels_file=str(labels))
    assert_one_line_error(f"error: {e.value}", f"{labels}:2", name, "not inside")


def test_workers_must_be_positive(class_folder, tmp_path):
    folder, _ = class_folder
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "pack_rec.py"), folder,
                           str(tmp_path / "set"), "--workers", "-3"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--workers -3", "positive")
    assert not os.path.exists(tmp_path / "set.rec")


@pytest.mark.parametrize("options, words", [
    (dict(quality=0), "quality 0: expected 1..100"),
    (dict(encoding=".gif"), "encoding '.gif': expected one of .jpg, .png"),
    (dict(resize=0), "resize 0: expected a positive number of pixels, at most 9459 (its "
                      "square is the 89478485 pixels an image may have)")])
def test_options_no_packer_accepts_are_one_line_errors(options, words):
    with pytest.raises(DataError) as refused:
        PackOptions(**options)
    assert str(refused.value) == words
