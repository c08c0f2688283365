"""The ImageNet-like set: its size law against the numbers it claims, and a small built set:
every record decodes to a photograph-sized image of a drawn size, no two alike, in the
files-per-class layout the packer writes."""
import os

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import DataError, check_rec, read_classes
from gluon_tricks.data.imagenet_like import SIZES, draw_size, make_imagenet_like

COMMON = {(w, h) for w, h, _ in SIZES}


def test_size_law_is_imagenets():
    rng = np.random.default_rng(0)
    sizes = np.array([draw_size(rng) for _ in range(20000)])
    w, h = sizes.T
    # about 400x350 on average, as ImageNet's
    assert 390 < w.mean() < 430 and 340 < h.mean() < 380
    common = np.mean([tuple(s) in COMMON for s in sizes])
    assert abs(common - sum(p for *_, p in SIZES)) < 0.02
    # 500x375 is the most frequent size, then 500x333 and 375x500
    values, counts = np.unique(sizes, axis=0, return_counts=True)
    top = [tuple(v) for v in values[np.argsort(-counts)[:3]]]
    assert top == [(500, 375), (500, 333), (375, 500)]
    assert sizes.max() <= 500 and sizes.min() >= 60
    assert (np.maximum(w / h, h / w) <= 2.01).all()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("imagenet_like"))
    return out, make_imagenet_like(out, num_train=24, num_val=9, seed=1)


def test_built_set_decodes_to_distinct_photographs(small_set):
    out, stats = small_set
    assert stats["train"]["images"] == 24 and stats["val"]["images"] == 9
    for split, n in (("train", 24), ("val", 9)):
        rec = os.path.join(out, f"{split}.rec")
        assert check_rec(rec) == n
        assert read_classes(rec) == ["china", "flower", "grace_hopper"]
        reader = mx.recordio.MXIndexedRecordIO(rec[:-4] + ".idx", rec, "r")
        images = []
        for key in sorted(reader.keys):
            header, img = mx.recordio.unpack_img(reader.read_idx(key))
            assert header.label in (0.0, 1.0, 2.0)
            h, w = img.shape[:2]
            assert img.shape[2] == 3 and ((w, h) in COMMON or max(w, h) <= 500)
            images.append(img)
        reader.close()
        # photographs, not flat fills, and every one its own window of its source
        assert all(img.std() > 20 for img in images)
        thumbs = [mx.image.imresize(mx.nd.array(i), 16, 16).asnumpy().astype(float)
                  for i in images]
        for i in range(len(thumbs)):
            for j in range(i):
                assert np.abs(thumbs[i] - thumbs[j]).mean() > 2, (split, i, j)
        # JPEG of quality 98 over camera-grain noise: about ImageNet's 110 KB a file
        assert 70 < stats[split]["mean_kb"] < 170


def test_refuses_to_overwrite(small_set):
    out, _ = small_set
    with pytest.raises(DataError, match="already exists"):
        make_imagenet_like(out, num_train=2, num_val=1)
