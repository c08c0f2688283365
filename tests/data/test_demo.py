"""The digits demo set against scikit-learn's own digits."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mxnet import recordio

from gluon_tricks.data import DataError, count_records, label_set
from gluon_tricks.data.demo import make_demo_data

from helpers import assert_one_line_error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_split_is_stratified_80_20(demo_dir):
    from sklearn.datasets import load_digits

    target = load_digits().target
    assert count_records(demo_dir + "/train.rec") + count_records(demo_dir + "/val.rec") == 1797
    assert count_records(demo_dir + "/val.rec") == 360
    assert label_set(demo_dir + "/train.rec") == label_set(demo_dir + "/val.rec") == list(range(10))
    with open(demo_dir + "/val.lst") as f:
        val_labels = np.array([float(line.split("\t")[1]) for line in f]).astype(int)
    for c in range(10):
        assert abs(np.sum(val_labels == c) - 0.2 * np.sum(target == c)) <= 1


def test_records_are_the_digits(demo_dir):
    from sklearn.datasets import load_digits

    digits = load_digits()
    reader = recordio.MXIndexedRecordIO(demo_dir + "/val.idx", demo_dir + "/val.rec", "r")
    with open(demo_dir + "/val.lst") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    for key, label, rel in rows[:40]:
        header, img = recordio.unpack_img(reader.read_idx(int(key)), iscolor=1)
        index = int(os.path.basename(rel)[:-4])  # images are named after the digits index
        assert header.label == float(label) == digits.target[index]
        assert img.shape == (32, 32, 3)
        small = cv2.resize(img[:, :, 0], (8, 8), interpolation=cv2.INTER_AREA).astype(float)
        truth = digits.images[index] * 255 / 16
        assert np.corrcoef(small.ravel(), truth.ravel())[0, 1] > 0.9
    reader.close()


def test_existing_set_needs_force(demo_dir):
    with pytest.raises(DataError, match="--force"):
        make_demo_data(demo_dir, size=32)
    tool = os.path.join(ROOT, "tools", "make_demo_data.py")
    r = subprocess.run([sys.executable, tool, demo_dir], capture_output=True, text=True)
    assert r.returncode == 2
    assert_one_line_error(r.stderr, demo_dir)
