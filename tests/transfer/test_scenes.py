"""The miniature detection/segmentation sets: GluonCV's own dataset classes read them, and
boxes and label maps describe the same digits."""
import hashlib
import os

import numpy as np
import pytest
from gluoncv.data import ADE20KSegmentation, CustomVOCDetectionBase

from gluon_tricks.data import DataError
from gluon_tricks.transfer.scenes import DIGIT_NAMES, make_digit_scenes


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_digit_scenes(str(tmp_path_factory.mktemp("scenes")), num_train=30, num_val=12)


def test_gluoncv_reads_both_layouts(scenes):
    for split, n in (("train", 30), ("val", 12)):
        det = CustomVOCDetectionBase(classes=DIGIT_NAMES, root=scenes["voc"],
                                     splits=[("VOC2007", split)])
        seg = ADE20KSegmentation(root=scenes["ade"], split=split, mode="testval")
        assert len(det) == len(seg) == n
    img, label = det[0]
    assert img.shape == (128, 128, 3) and label.shape[1] == 6
    img, mask = seg[0]
    assert img.shape == (128, 128, 3) and mask.shape == (128, 128)


def test_boxes_are_the_tight_boxes_of_the_labelled_strokes(scenes):
    """VOC box (0-based after GluonCV's -1) of digit d = bounding box of label-map pixels of
    class d + 1 (after GluonCV's -1) inside it; no stroke pixel lies outside every box."""
    det = CustomVOCDetectionBase(classes=DIGIT_NAMES, root=scenes["voc"],
                                 splits=[("VOC2007", "val")])
    seg = ADE20KSegmentation(root=scenes["ade"], split="val", mode="testval")
    # both list the same canvases in the same order (val canvases 31..42 / ADE_val_1..12)
    images = sorted(range(len(seg)), key=lambda i: seg.images[i])
    digits_seen = 0
    for i, j in zip(range(len(det)), images):
        _, label = det[i]
        mask = seg[j][1].asnumpy()
        assert set(np.unique(mask)) <= set(range(11))  # background 0, digits 1..10
        covered = np.zeros(mask.shape, bool)
        for x0, y0, x1, y1, cls, difficult in label:
            x0, y0, x1, y1, cls = (int(v) for v in (x0, y0, x1, y1, cls))
            inside = mask[y0:y1 + 1, x0:x1 + 1] == cls + 1
            ys, xs = np.nonzero(inside)
            assert (ys.min(), xs.min(), ys.max(), xs.max()) == (0, 0, y1 - y0, x1 - x0)
            covered[y0:y1 + 1, x0:x1 + 1] = True
            digits_seen += 1
        assert not ((mask > 0) & ~covered).any()
    assert digits_seen >= len(det)  # 1-3 digits a canvas


def test_same_seed_same_files_and_refuses_to_overwrite(scenes, tmp_path):
    def digest(root):
        h = hashlib.sha256()
        for folder, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                h.update(name.encode())
                with open(os.path.join(folder, name), "rb") as f:
                    h.update(f.read())
        return h.hexdigest()
    again = make_digit_scenes(str(tmp_path / "again"), num_train=30, num_val=12)
    for key in ("voc", "ade"):
        assert digest(again[key]) == digest(scenes[key])
    with pytest.raises(DataError, match="--force"):
        make_digit_scenes(str(tmp_path / "again"), num_train=30, num_val=12)
