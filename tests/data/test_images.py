"""The one image check every tool runs (gluon_tricks.data.images): what it lets through and
what it finds, against what OpenCV and MXNet's own decoders do with the same bytes."""
import io

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data.images import bad_files, decode, file_problem, image_problem
from helpers import cut_in_half, jpeg_bytes, png_bytes


def test_a_whole_image_passes_and_is_decoded():
    data = jpeg_bytes()
    img, why = decode(data)
    assert why is None
    np.testing.assert_array_equal(img, cv2.imdecode(np.frombuffer(data, np.uint8), 1))
    png = cv2.imencode(".png", np.zeros((5, 7, 3), np.uint8))[1].tobytes()
    assert image_problem(png) is None


def test_a_jpeg_cut_short_is_found_although_mxnet_decodes_it():
    cut = cut_in_half(jpeg_bytes())
    assert mx.image.imdecode(cut).shape == (48, 48, 3)  # whatever its buffer held
    assert "cut short" in image_problem(cut)


def test_undecodable_bytes_and_pixel_bombs_are_found(monkeypatch):
    assert "decode" in image_problem(b"not an image")
    big = cv2.imencode(".png", np.zeros((60, 50, 3), np.uint8))[1].tobytes()
    monkeypatch.setattr("gluon_tricks.data.images.MAX_PIXELS", 2999)
    assert "50 x 60 pixels" in image_problem(big)


def test_files_are_checked_in_order(tmp_path):
    paths = []
    for name, data in (("a.jpg", jpeg_bytes()), ("b.jpg", cut_in_half(jpeg_bytes())),
                       ("c.jpg", b"junk"), ("d.jpg", jpeg_bytes(1))):
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    assert [(p[-5:], why.split()[0]) for p, why in bad_files(paths, threads=2)] == \
        [("b.jpg", "a"), ("c.jpg", "not")]
    assert "cannot be read" in file_problem(str(tmp_path / "missing.jpg"))


def test_an_empty_file_is_found_where_opencv_raises():
    with pytest.raises(cv2.error):  # pack_rec.py and predict.py showed it, naming no file
        cv2.imdecode(np.frombuffer(b"", np.uint8), cv2.IMREAD_COLOR)
    assert image_problem(b"") == "an empty file (0 bytes)"


def test_huge_images_are_found_from_their_header_without_decoding(monkeypatch):
    """A header claiming 60000 x 60000 pixels (Pillow's own decompression-bomb error, which
    was taken for "size unknown"), a real 20000 x 20000 PNG (decoded: 1.2 GB) and one just
    over the limit (Pillow only warns) are refused before OpenCV sees them."""
    from PIL import Image
    bomb, real = png_bytes(60000, 60000, whole=False), png_bytes(20000, 20000)
    assert len(bomb) < 100 and len(real) < 100_000
    for data in (bomb, real):
        with pytest.raises(Image.DecompressionBombError):
            Image.open(io.BytesIO(data))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a huge image"))
    for data in (bomb, real):
        assert "over the 89478485 accepted" in image_problem(data)
    assert image_problem(png_bytes(10000, 9000, whole=False)) == \
        "10000 x 9000 pixels, over the 89478485 accepted"
