"""tools/predict.py: the validation transform on image files (against an OpenCV/numpy
reference), class names, top-k, one-line errors."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from gluon_tricks.data import DataConfig
from gluon_tricks.infer.predict import transform
from helpers import TOOLS, assert_one_line_error, assert_refused_in_process, jpeg_bytes, png_bytes

PREDICT = os.path.join(TOOLS, "predict.py")


def predict(*args):
    return subprocess.run([sys.executable, PREDICT, *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def run(learned32):
    """A run that learned (about 80% top-1), read only."""
    return learned32


@pytest.mark.parametrize("shape", [(53, 40), (40, 53), (32, 32)])
def test_transform_is_resize_short_centre_crop_normalise(tmp_path, shape):
    """An OpenCV/numpy reference: short side to 37 (floor of the long side's scale, as
    ImageRecordIter), bilinear, centre 32 x 32 crop, (RGB - mean) / std, CHW."""
    rng = np.random.default_rng(1)
    path = str(tmp_path / "img.png")  # lossless: both decode the same pixels
    cv2.imwrite(path, rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    data = DataConfig(input_size=32)
    rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    size = data.resize
    new_w, new_h = (size, size * h // w) if h > w else (size * w // h, size)
    img = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    y, x = (new_h - 32) // 2, (new_w - 32) // 2
    crop = img[y:y + 32, x:x + 32]
    expected = ((crop - np.array(data.mean_rgb, np.float32)) /
                np.array(data.std_rgb, np.float32)).transpose(2, 0, 1)
    np.testing.assert_allclose(transform(path, data), expected, rtol=1e-5, atol=1e-4)


def test_predictions_on_the_validation_images(run, demo32, tmp_path):
    """Over the 360 validation images as files: top-1 within two images of the run's own
    validation of the same network on the .rec (the same transform; the .rec holds the
    images re-encoded), names from --classes-file, top-k sorted."""
    images = os.path.join(os.path.dirname(demo32["val"]), "images", "val")
    names = tmp_path / "names.txt"
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    names.write_text("\n".join(words) + "\n")
    done = predict(run, images, "--classes-file", names, "--topk", 3, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 360
    right = 0
    for line in lines:
        top = line["top"]
        assert len(top) == 3 and [t["name"] for t in top] == [words[t["index"]] for t in top]
        probs = [t["probability"] for t in top]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        right += top[0]["index"] == int(os.path.basename(os.path.dirname(line["image"])))
    with open(os.path.join(run, "best.json")) as f:
        best = json.load(f)
    assert abs(right / 360 - best["val_top1"]) <= 2 / 360 + 1e-9, (right, best)
    assert right / 360 > 0.5  # the run learned, so the comparison means something


def test_names_come_from_the_runs_training_set(run, demo32):
    one = os.path.join(os.path.dirname(demo32["val"]), "images", "val", "7")
    done = predict(run, one, "--topk", 1)
    assert done.returncode == 0, done.stderr[-2000:]
    first = done.stdout.strip().splitlines()[0]
    assert first.startswith(one) and "%" in first


def test_bad_input_is_one_line(tool, run, tmp_path, capsys):
    """In this process, through the wrapper the script runs main in (that the script itself
    ends in one line without a traceback: tests/tools/test_tools_cli.py)."""
    main = tool("predict").main
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    good = os.path.join(run, "best.json")  # any existing file will do where no image is read
    for args, words in (
            ((run, tmp_path / "nope.jpg"), ("nope.jpg", "no such file")),
            ((run, tmp_path / "empty"), ("empty", "no image files")),
            ((run, tmp_path / "junk.jpg"), ("junk.jpg", "decode")),
            ((run, good, "--classes-file", tmp_path / "three.txt"), ("3 class names", "10")),
            ((run, good, "--topk", 0), ("--topk 0",))):
        assert_refused_in_process(main, args, capsys, *words)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """A 10-class network with random weights (.params) and 41 files: 40 whole images and
    one JPEG cut in half, in one folder."""
    from helpers import cut_in_half, jpeg_bytes, random_params
    root = tmp_path_factory.mktemp("predict_inputs")
    images = root / "images"
    images.mkdir()
    for i in range(40):
        (images / f"{i:02d}.jpg").write_bytes(jpeg_bytes(i, 40))
    (images / "20_cut.jpg").write_bytes(cut_in_half(jpeg_bytes(99, 40)))
    return dict(params=random_params(root / "net.params", 10), images=str(images),
                cut=str(images / "20_cut.jpg"))


def bare(net, *args):
    return predict(net["params"], "--model", "resnet18_v1d", "--input-size", 32, *args)


def test_a_jpeg_cut_in_half_is_refused(net):
    """MXNet decodes it without an error, into whatever its buffer held."""
    done = bare(net, net["cut"])
    assert done.returncode == 2 and done.stdout == "", done.stderr[-2000:]
    assert_one_line_error(done.stderr, "20_cut.jpg", "cut short", "--skip-bad")


def test_a_bad_file_in_a_folder_stops_before_any_prediction_or_is_skipped(net):
    done = bare(net, net["images"])
    assert done.returncode == 2 and done.stdout == "", done.stderr[-2000:]
    assert_one_line_error(done.stderr, "20_cut.jpg", "cut short")
    done = bare(net, net["images"], "--skip-bad", "--topk", 1)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 40 and not any("20_cut" in line for line in lines)
    assert "skipping" in done.stderr and "20_cut.jpg: a JPEG cut short" in done.stderr


def test_predictions_stream_batch_by_batch(net, monkeypatch):
    """The first batch's lines come before the next batch's images are read."""
    import gluon_tricks.infer.predict as infer_predict
    from gluon_tricks.infer.checkpoint import CheckpointOverrides, open_checkpoint
    read = []
    real = infer_predict.transform
    monkeypatch.setattr(infer_predict, "transform",
                        lambda path, data: read.append(path) or real(path, data))
    ckpt = open_checkpoint(net["params"],
                           overrides=CheckpointOverrides(model="resnet18_v1d", input_px=32))
    files = sorted(os.path.join(net["images"], f) for f in os.listdir(net["images"])
                   if "cut" not in f)
    lines = infer_predict.predict(ckpt, files, [str(i) for i in range(10)], batch_size=4)
    first = next(iter(lines))
    assert first[0] == files[0] and read == files[:4]


def test_empty_and_huge_files_are_refused_or_skipped_before_decoding(net, tmp_path):
    """A 0-byte file and a PNG header claiming 60000 x 60000 pixels: one line naming the
    first, or with --skip-bad a line each and the other images predicted."""
    empty, bomb, good = tmp_path / "empty.jpg", tmp_path / "bomb.png", tmp_path / "good.jpg"
    empty.write_bytes(b"")
    bomb.write_bytes(png_bytes(60000, 60000, whole=False))
    good.write_bytes(jpeg_bytes(3, 40))
    done = bare(net, empty, bomb, good)
    assert done.returncode == 2 and done.stdout == "", done.stderr[-2000:]
    assert_one_line_error(done.stderr, "empty.jpg", "empty file", "and 1 more", "--skip-bad")
    done = bare(net, empty, bomb, good, "--skip-bad", "--topk", 1)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{good}: ") and len(done.stdout.splitlines()) == 1
    assert f"skipping {empty}: an empty file" in done.stderr
    assert f"skipping {bomb}: more pixels than Pillow opens" in done.stderr


def test_a_fifo_is_named_as_such_not_missing(tmp_path):
    from gluon_tricks.infer.predict import PredictError, image_files
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(PredictError) as e:
        image_files([str(tmp_path / "pipe.jpg")])
    assert_one_line_error(f"error: {e.value}", "pipe.jpg", "not a regular file")
