"""Shared fixtures of the data tests: small synthetic RecordIO sets written directly with
mx.recordio (not with our packer, so the pipeline tests do not depend on it) and the 32 px
digits demo set, built once per session."""
import os

import cv2
import numpy as np
import pytest

from helpers import COORD_B, COORD_H, COORD_W, coord_image, smooth_image, write_rec


@pytest.fixture(scope="session")
def coord():
    """(width, height, blue value, HxWx3 uint8 RGB image) of the coordinate image."""
    return COORD_W, COORD_H, COORD_B, coord_image()


@pytest.fixture(scope="session")
def coord_rec(tmp_path_factory):
    """64 copies of the coordinate image, PNG (lossless), labels 0..63."""
    prefix = str(tmp_path_factory.mktemp("coord") / "coord")
    img = coord_image()
    return write_rec(prefix, [img] * 64, range(64))


@pytest.fixture(scope="session")
def val_images():
    """Landscape 300x240 and portrait 240x300 smooth images: short edge 240 -> 256 makes the
    long edge exactly 320, so the reference resize has no rounding ambiguity."""
    return [smooth_image(240, 300, s) if s % 2 == 0 else smooth_image(300, 240, s)
            for s in range(6)]


@pytest.fixture(scope="session")
def val_rec(tmp_path_factory, val_images):
    prefix = str(tmp_path_factory.mktemp("valset") / "val")
    return write_rec(prefix, val_images, range(len(val_images)))


@pytest.fixture(scope="session")
def numbered_rec(tmp_path_factory):
    """37 small images whose label is their record number (so coverage is checkable)."""
    prefix = str(tmp_path_factory.mktemp("numbered") / "numbered")
    return write_rec(prefix, [smooth_image(40, 48, s) for s in range(37)], range(37),
                     img_fmt=".jpg")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """The 32 px digits demo set: the folder holding train.rec and val.rec (the session
    fixture `demo32` of tests/conftest.py gives the same set as a dict of paths)."""
    from gluon_tricks.data.demo import make_demo_data

    out = str(tmp_path_factory.mktemp("demo_dir"))
    make_demo_data(out, size=32, workers=1)
    return out


@pytest.fixture
def class_folder(tmp_path):
    """A folder of 3 class sub-folders (names deliberately not in creation order) holding
    4 random PNG images each; returns (folder, {relative path: (RGB image, label)})."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    truth = {}
    names = ["zebra", "apple", "kiwi"]
    for name in names:
        label = sorted(names).index(name)
        os.makedirs(root / name)
        for i in range(4):
            img = rng.integers(0, 256, (20 + i, 30, 3)).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i}.png"), img[:, :, ::-1])
            truth[f"{name}/{i}.png"] = (img, label)
    return str(root), truth
