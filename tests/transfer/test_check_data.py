"""Annotations and masks checked before a transfer run touches its folder: a corrupt XML,
an unknown class name, a box outside its image, an RGB mask, a mask of the wrong size or
with values beyond the classes are each one line naming the file (and the object)."""
import os
import shutil

import cv2
import numpy as np
import pytest

from gluon_tricks.errors import RunError
from gluon_tricks.transfer import detection, segmentation
from gluon_tricks.transfer.scenes import make_digit_scenes
from helpers import assert_one_line_error


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_digit_scenes(str(tmp_path_factory.mktemp("scenes")), num_train=4, num_val=2,
                             size=48, scale=(16, 24), max_digits=2)


@pytest.fixture
def scenes(pristine, tmp_path):
    """A copy of the small digit scenes, for one test to break."""
    out = tmp_path / "scenes"
    shutil.copytree(os.path.dirname(pristine["voc"]), out)
    return dict(voc=str(out / "voc"), ade=str(out / "ade"))


def first_xml(scenes):
    return os.path.join(scenes["voc"], "VOC2007", "Annotations", "000001.xml")


def first_mask(scenes):
    return os.path.join(scenes["ade"], "ADEChallengeData2016", "annotations", "training",
                        "ADE_train_00000001.png")


def refused(check, root, *words):
    with pytest.raises(RunError) as e:
        check(root, "digits")
    assert "\n" not in str(e.value), str(e.value)
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_the_digit_scenes_pass(scenes):
    detection.check_data(scenes["voc"], "digits")
    segmentation.check_data(scenes["ade"], "digits")


def test_a_corrupt_annotation_is_named(scenes):
    xml = first_xml(scenes)
    with open(xml) as f:
        text = f.read()
    with open(xml, "w") as f:
        f.write(text[:len(text) // 2])
    refused(detection.check_data, scenes["voc"], xml, "not valid XML")


def test_an_unknown_class_name_is_named_with_its_object(scenes):
    xml = first_xml(scenes)
    with open(xml) as f:
        text = f.read()
    with open(xml, "w") as f:
        f.write(text.replace("<name>", "<name>x", 1))
    refused(detection.check_data, scenes["voc"], xml, "object 0", "not one of the classes")


def test_a_box_outside_its_image_is_named_with_its_object(scenes):
    """GluonCV's dataset drops the whole image (with a warning at most) and trains on."""
    import re
    xml = first_xml(scenes)
    with open(xml) as f:
        text = f.read()
    with open(xml, "w") as f:
        f.write(re.sub(r"<xmax>\d+</xmax>", "<xmax>60</xmax>", text, count=1))
    refused(detection.check_data, scenes["voc"], xml, "object 0", "60", "48 x 48 image")


def test_an_rgb_mask_is_named(scenes):
    mask = first_mask(scenes)
    grey = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    cv2.imwrite(mask, np.stack([grey] * 3, axis=2))
    refused(segmentation.check_data, scenes["ade"], mask, "3 channels")


def test_a_mask_of_the_wrong_size_is_named(scenes):
    mask = first_mask(scenes)
    grey = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    cv2.imwrite(mask, grey[:40])
    refused(segmentation.check_data, scenes["ade"], mask, "48 x 40 pixels", "48 x 48")


def test_a_mask_value_beyond_the_classes_is_named(scenes):
    mask = first_mask(scenes)
    grey = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
    grey[0, 0] = 12  # 11 classes: values 1..11, 0 unlabelled
    cv2.imwrite(mask, grey)
    refused(segmentation.check_data, scenes["ade"], mask, "value 12", "1..11")


def test_a_bad_annotation_leaves_no_run_folder(scenes, tmp_path):
    """Through the command line: one line, exit status 2, and no --out folder."""
    import subprocess
    import sys
    root = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
    xml = first_xml(scenes)
    with open(xml, "w") as f:
        f.write("<annotation><size>")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, os.path.join(root, "tools", "transfer.py"),
                           "--recipe", os.path.join(root, "recipes", "transfer",
                                                    "digits_detection.yaml"),
                           "--data", scenes["voc"], "--out", str(out), "--set",
                           "pretrained=false"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, xml, "not valid XML")
    assert not out.exists()
