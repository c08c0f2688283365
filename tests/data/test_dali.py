"""The ``dali`` backend in DALI's CPU mode against the RecordIO backend (MXNet's C++
ImageRecordIter, an independent implementation) and against the laws the paper states:
validation pixels, crop area and aspect from a coordinate image, flip rate, each colour
coefficient recovered from images built so that it can be read off, the grey that contrast
and saturation blend with, lighting coefficients, normalisation, shards and seeds.

Both pipelines run on one thread with fixed seeds, so every statistic below is one fixed
number on a given DALI and MXNet; the margins are set a few standard errors wide so that
they do not depend on those particular draws. Skipped where DALI is not installed (see
gluon_tricks/data/dali.py for the install line)."""
import importlib.util
import sys

import cv2
import numpy as np
import pytest

from gluon_tricks.data import DataConfig, DataError, Shard, make_loader
from helpers import write_rec

HAVE_DALI = importlib.util.find_spec("nvidia") is not None and \
    importlib.util.find_spec("nvidia.dali") is not None
needs_dali = pytest.mark.skipif(not HAVE_DALI, reason="NVIDIA DALI is not installed")

MEAN = np.array([123.68, 116.779, 103.939])
STD = np.array([58.393, 57.12, 57.375])
NO_COLOUR = dict(brightness=0, contrast=0, saturation=0, pca_noise=0)
# AlexNet's lighting (docs/notes.md §1): column k is eigenvector k, scaled by eigenvalue k
EIG = np.array([[-0.5675, 0.7192, 0.4009],
                [-0.5808, -0.0045, -0.8140],
                [-0.5836, -0.6948, 0.4203]]) * np.array([55.46, 4.794, 1.148])


def cfg_for(backend, **kw):
    kw.setdefault("input_size", 32)
    kw.setdefault("num_workers", 1)
    return DataConfig(backend=backend, **kw)


def pixels_of(loader, epochs):
    """Every output of the ``epochs`` (a list) as (N, S, S, 3) float64 pixels in [0, 255],
    and the labels."""
    data, labels = [], []
    for e in epochs:
        for d, y in loader.epoch(e):
            data.append(d.asnumpy())
            labels.append(y.asnumpy())
    x = np.concatenate(data).transpose(0, 2, 3, 1).astype(np.float64)
    return x * STD + MEAN, np.concatenate(labels)


def both(rec, epochs=(0,), batch_size=64, train=True, **kw):
    """{backend: (pixels, labels)} of the dali and recordio backends with the same config.

    With ``seed_aug`` (which our RecordIO loader passes, for reproducible epochs)
    ImageRecordIter re-seeds its generator for every record from the record's position in
    its batch, so every batch of an epoch repeats the first one's draws: with a batch of
    the whole 64-record set, each epoch's draws are distinct."""
    return {b: pixels_of(make_loader(cfg_for(b, **kw), rec, batch_size, train=train), epochs)
            for b in ("dali", "recordio")}


def flat_rec(tmp_path, name, rgb, n=64, size=(40, 48)):
    """n copies of one flat colour image (PNG), labels 0..n-1."""
    img = np.empty(size + (3,), np.uint8)
    img[:] = rgb
    return write_rec(str(tmp_path / name), [img] * n, range(n))


def test_missing_dali_is_a_one_line_error(coord_rec, monkeypatch):
    monkeypatch.setitem(sys.modules, "nvidia.dali", None)  # import raises ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "gluon_tricks.data.dali", raising=False)
    with pytest.raises(DataError, match="pip install nvidia-dali"):
        make_loader(cfg_for("dali"), coord_rec, 4, train=True)


@needs_dali
def test_validation_equals_recordio(tmp_path):
    # odd sizes: the long edge 256 * long // short truncates and (size - 224) // 2 floors
    rng = np.random.default_rng(0)
    shapes = [(240, 300), (300, 240), (333, 500), (500, 333), (257, 257), (301, 300)]
    images = [cv2.resize(rng.integers(0, 256, (h // 16, w // 16, 3)).astype(np.uint8), (w, h),
                         interpolation=cv2.INTER_CUBIC) for h, w in shapes]
    rec = write_rec(str(tmp_path / "val"), images, range(len(images)))
    out = both(rec, batch_size=4, train=False, input_size=224)
    (dali, dali_labels), (ours, our_labels) = out["dali"], out["recordio"]
    np.testing.assert_array_equal(dali_labels, np.arange(len(images)))
    np.testing.assert_array_equal(our_labels, dali_labels)
    # same sizes and offsets; OpenCV resizes uint8 in 11-bit fixed point, DALI in float, so
    # a pixel may round to the next grey level; an offset one pixel off would show as tens
    diff = np.abs(dali - ours)
    assert diff.max() <= 1.01 and diff.mean() < 0.3, (diff.max(), diff.mean())


def crop_geometry(pixels, blue):
    """(crop width, crop height in source pixels, flipped, residual) of one (S, S, 3) output
    of the coordinate image (R = x, G = y, B = blue): straight-line fits of R along a row
    and G along a column."""
    s = pixels.shape[0]
    cols = np.arange(s)
    slope_x, icpt_x = np.polyfit(cols, pixels[:, :, 0].mean(axis=0), 1)
    slope_y, icpt_y = np.polyfit(cols, pixels[:, :, 1].mean(axis=1), 1)
    resid = max(np.abs(pixels[:, :, 0] - (slope_x * cols + icpt_x)[None, :]).max(),
                np.abs(pixels[:, :, 1] - (slope_y * cols + icpt_y)[:, None]).max(),
                np.abs(pixels[:, :, 2] - blue).max())
    return abs(slope_x) * s, abs(slope_y) * s, slope_x < 0, resid


@needs_dali
def test_crop_area_aspect_and_flip(coord, coord_rec):
    from scipy import stats

    width, height, blue, _ = coord
    # max_area 0.5: every draw fits in the 200x160 image at any aspect, so no pipeline
    # retries or falls back and the crop follows the drawn law itself
    out = both(coord_rec, epochs=range(6), max_area=0.5, **NO_COLOUR)
    geo = {b: np.array([crop_geometry(p, blue) for p in out[b][0]]) for b in out}
    for w, h, flipped, resid in (g.T for g in geo.values()):
        assert resid.max() < 2.0  # one rectangle of the source, resampled
        n = len(flipped)
        assert n == 384 and abs(flipped.mean() - 0.5) <= 4 * np.sqrt(0.25 / n)
    area = {b: g[:, 0] * g[:, 1] / (width * height) for b, g in geo.items()}
    log_aspect = {b: np.log(g[:, 0] / g[:, 1]) for b, g in geo.items()}
    for b in area:
        # crop sides are whole pixels (about 50 at the smallest): allow their rounding
        assert area[b].min() >= 0.08 * 0.95 and area[b].max() <= 0.5 * 1.04
        assert area[b].min() < 0.1 and area[b].max() > 0.45
        assert abs(log_aspect[b]).max() <= np.log(4 / 3) + 0.03
        assert abs(log_aspect[b]).max() > np.log(4 / 3) - 0.03
        wide = (log_aspect[b] > 0).mean()  # wide and tall alike
        assert abs(wide - 0.5) <= 4 * np.sqrt(0.25 / len(log_aspect[b]))
    # the area is U[0.08, 0.5] in both, and the same law in both
    assert stats.kstest(area["dali"], stats.uniform(0.08, 0.42).cdf).pvalue > 1e-3
    # ImageRecordIter's fresh iterator of each epoch draws from the same per-thread
    # generators (seeded by MXNet, not by us), so on 64 copies of one image its six epochs
    # repeat one epoch's 64 draws: compare with those
    assert stats.ks_2samp(area["dali"], area["recordio"][:64]).pvalue > 1e-3
    # DALI's aspect is log-uniform; ImageRecordIter's is uniform in [3/4, 4/3] with width and
    # height swapped half the time: the same range, nearly the same spread
    lo, hi = np.log(3 / 4), np.log(4 / 3)
    assert stats.kstest(log_aspect["dali"], stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3
    spread = {b: np.abs(v).mean() for b, v in log_aspect.items()}
    assert abs(spread["dali"] - spread["recordio"]) < 0.02, spread


@needs_dali
def test_whole_image_crop_is_resize_and_normalise(coord, coord_rec):
    width, height, _, image = coord
    ratio = width / height
    out = both(coord_rec, batch_size=8, input_size=48, min_area=1.0, max_area=1.0,
               min_aspect_ratio=ratio, max_aspect_ratio=ratio, flip=False, **NO_COLOUR)
    ref = cv2.resize(image, (48, 48), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    for b, (pixels, _) in out.items():
        assert np.abs(pixels - ref[None]).max() <= 1.01, b  # normalised as (x - mean) / std


@needs_dali
def test_brightness_contrast_saturation_ranges(tmp_path):
    from scipy import stats

    whole = dict(min_area=1.0, max_area=1.0, min_aspect_ratio=1.2, max_aspect_ratio=1.2,
                 flip=False, pca_noise=0)
    off = dict(brightness=0, contrast=0, saturation=0)
    # brightness: a flat colour scales by b
    rgb = np.array([150.0, 100.0, 60.0])
    rec = flat_rec(tmp_path, "flat", rgb)
    got = both(rec, epochs=range(4), **whole, **dict(off, brightness=0.4))
    coef = {b: (p.mean(axis=(1, 2)) / rgb).mean(axis=1) for b, (p, _) in got.items()}
    # contrast: left half 60, right half 180 grey; the mean grey stays, the gap scales by c
    img = np.full((40, 48, 3), 60, np.uint8)
    img[:, 24:] = 180
    rec2 = write_rec(str(tmp_path / "halves"), [img] * 64, range(64))
    got = both(rec2, epochs=range(4), **whole, **dict(off, contrast=0.4))
    for b, (p, _) in got.items():
        gap = p[:, :, 28:, :].mean(axis=(1, 2, 3)) - p[:, :, :4, :].mean(axis=(1, 2, 3))
        assert np.abs(p.mean(axis=(1, 2, 3)) - 120).max() < 1.5
        coef[b + " contrast"] = gap / 120
    # saturation: a flat colour moves along the line to its grey; read s and that grey
    sat_rgb = np.array([200.0, 100.0, 50.0])
    rec3 = flat_rec(tmp_path, "colour", sat_rgb)
    got = both(rec3, epochs=range(4), **whole, **dict(off, saturation=0.4))
    grey = {}
    for b, (p, _) in got.items():
        px = p.mean(axis=(1, 2))  # (N, 3)
        coef[b + " saturation"] = (px[:, 0] - px[:, 2]) / (sat_rgb[0] - sat_rgb[2])
        # px - rgb = (1 - s)(g - rgb): g from the least-squares line over all images
        far = np.abs(1 - coef[b + " saturation"]) > 0.1
        t = 1 - coef[b + " saturation"][far]
        grey[b] = np.mean(((px[far] - sat_rgb) / t[:, None] + sat_rgb).mean(axis=1))
    for name, c in coef.items():
        # 256 draws of U[0.6, 1.4]: the extremes come within 0.03 of the ends
        assert c.min() >= 0.6 - 0.01 and c.max() <= 1.4 + 0.01, name
        assert c.min() < 0.63 and c.max() > 1.37, name
        assert stats.kstest(c, stats.uniform(0.6, 0.8).cdf).pvalue > 1e-3, name
    # both blend with the same grey: ImageRecordIter's, weights 0.114, 0.587, 0.299 on R,G,B
    assert abs(grey["dali"] - grey["recordio"]) < 2.0, grey
    assert abs(grey["dali"] - np.dot([0.114, 0.587, 0.299], sat_rgb)) < 1.0, grey


@needs_dali
def test_pca_lighting(tmp_path):
    rec = flat_rec(tmp_path, "grey", (128, 128, 128))
    got = both(rec, epochs=range(4), min_area=1.0, max_area=1.0, min_aspect_ratio=1.2,
               max_aspect_ratio=1.2, flip=False, brightness=0, contrast=0, saturation=0)
    alpha = {b: np.linalg.solve(EIG, (p.mean(axis=(1, 2)) - 128).T).T for b, (p, _) in got.items()}
    n = len(alpha["dali"])
    assert n == 256
    # DALI adds the shift in float: all three coefficients are N(0, 0.1); the sample std of
    # 256 normal draws is within 20 % of the true one far beyond 4 standard errors
    for k in range(3):
        assert abs(alpha["dali"][:, k].std() / 0.1 - 1) < 0.2, k
        assert abs(alpha["dali"][:, k].mean()) < 4 * 0.1 / np.sqrt(n), k
    # ImageRecordIter truncates to whole grey levels, which only the principal component
    # (eigenvalue 55.46: about 5.5 grey levels per unit of 0.1) survives
    assert abs(alpha["recordio"][:, 0].std() / 0.1 - 1) < 0.2
    assert abs(alpha["dali"][:, 0].std() / alpha["recordio"][:, 0].std() - 1) < 0.25


@needs_dali
@pytest.mark.parametrize("parts", [1, 3])
def test_shards_cover_and_validation_reads_each_record_once(numbered_rec, parts):
    from gluon_tricks.data.dali import dali_shard_range

    seen = []
    for p in range(parts):
        loader = make_loader(cfg_for("dali", input_size=16), numbered_rec, 8, train=False,
                             shard=Shard(parts, p))
        assert (loader.begin, loader.end) == dali_shard_range(37, parts, p)
        labels = [pixels_of(loader, [0])[1] for _ in range(2)]
        np.testing.assert_array_equal(labels[0], labels[1])
        assert len(labels[0]) == loader.num_samples
        assert set(labels[0].astype(int)) == set(range(loader.begin, loader.end))
        seen.extend(labels[0].astype(int).tolist())
    assert sorted(seen) == list(range(37))


@needs_dali
def test_train_epochs_are_seeded_and_the_same_length_on_every_shard(numbered_rec):
    cfg = cfg_for("dali", input_size=16)
    for p in range(3):
        loader = make_loader(cfg, numbered_rec, 4, train=True, shard=Shard(3, p), seed=7)
        assert loader.batches_per_epoch == (37 // 3) // 4 == 3
        a, la = pixels_of(loader, [0])
        assert len(la) == 12 and set(la.astype(int)) <= set(range(loader.begin, loader.end))
        b, lb = pixels_of(loader, [0])
        np.testing.assert_array_equal(a, b)  # the same (seed, epoch): the same batches
        np.testing.assert_array_equal(la, lb)
        other = pixels_of(make_loader(cfg.replace(num_workers=2), numbered_rec, 4, train=True,
                                      shard=Shard(3, p), seed=7), [0])[0]
        np.testing.assert_array_equal(a, other)  # whatever the number of threads
    loader = make_loader(cfg, numbered_rec, 4, train=True, seed=7)
    assert not np.array_equal(pixels_of(loader, [0])[0], pixels_of(loader, [1])[0])


@needs_dali
def test_refuses_hue(coord_rec):
    with pytest.raises(DataError, match="hue"):
        make_loader(cfg_for("dali", hue=0.1), coord_rec, 4, train=True)


@pytest.fixture(scope="module")
def many_rec(tmp_path_factory):
    """2,500 tiny JPEGs whose label is their record number: several times more records than
    any buffer of the loader (a batch, the prefetch queue) and than DALI's old 1,024-record
    shuffle buffer."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3)).astype(np.uint8) for _ in range(2500)]
    return write_rec(str(tmp_path_factory.mktemp("many") / "many"), images, range(2500),
                     img_fmt=".jpg")


def epoch_labels(loader, epoch, contexts=None):
    """The labels of an epoch in delivery order (ints), through device_epoch."""
    out = []
    for xs, ys, n in loader.device_epoch(epoch, contexts):
        out.extend(np.concatenate([y.asnumpy() for y in ys])[:n].astype(int).tolist())
    return np.array(out)


@needs_dali
def test_each_epoch_is_a_new_permutation_of_the_shard(many_rec):
    from scipy import stats

    cfg = cfg_for("dali", input_size=8, **NO_COLOUR, flip=False)
    loader = make_loader(cfg, many_rec, 96, train=True, seed=3)
    assert loader.batches_per_epoch == 26  # 2,496 records, the 4 others dropped
    first, second = epoch_labels(loader, 0), epoch_labels(loader, 1)
    for labels in (first, second):
        assert len(labels) == 2496 and len(set(labels)) == 2496
        # no record comes near step p / batch any more
        assert abs(stats.spearmanr(labels, np.arange(len(labels)))[0]) < 0.1
    both_epochs = np.intersect1d(first, second)
    where = {e: {r: i for i, r in enumerate(labels)} for e, labels in enumerate((first, second))}
    rho = stats.spearmanr([where[0][r] for r in both_epochs], [where[1][r] for r in both_epochs])
    assert abs(rho[0]) < 0.1
    dropped = [set(range(2500)) - set(labels) for labels in (first, second)]
    assert dropped[0] != dropped[1] and not dropped[0] <= set(range(2496, 2500))


@needs_dali
def test_one_pipeline_per_device_takes_its_share_of_the_batch(many_rec, monkeypatch):
    import mxnet as mx

    from gluon_tricks.data import dali

    built = []
    real_pipeline = dali.Pipeline
    monkeypatch.setattr(dali, "Pipeline", lambda **kw: built.append(kw) or real_pipeline(**kw))
    cfg = cfg_for("dali", input_size=8, num_workers=4)
    contexts = [mx.cpu(0), mx.cpu(1), mx.cpu(2)]
    loader = make_loader(cfg, many_rec, 100, train=True, shard=Shard(2, 1), seed=3)
    order = loader.order(0)
    for b, (xs, ys, n) in enumerate(loader.device_epoch(0, contexts)):
        assert n == 100 and [x.shape[0] for x in xs] == [34, 33, 33]
        assert [x.context for x in xs] == [y.context for y in ys] == contexts
        got = np.concatenate([y.asnumpy() for y in ys]).astype(int)
        np.testing.assert_array_equal(got, order[b * 100:(b + 1) * 100])
        if b == 1:
            break
    assert [kw["batch_size"] for kw in built] == [34, 33, 33]
    assert [kw["num_threads"] for kw in built] == [1, 1, 1]  # 4 workers over 3 devices
    assert len({kw["seed"] for kw in built}) == 3


@needs_dali
def test_validation_pipelines_are_built_once_and_read_each_record_once(many_rec, monkeypatch):
    import mxnet as mx

    from gluon_tricks.data import dali

    built = []
    real_pipeline = dali.Pipeline
    monkeypatch.setattr(dali, "Pipeline", lambda **kw: built.append(kw) or real_pipeline(**kw))
    loader = make_loader(cfg_for("dali", input_size=8), many_rec, 96, train=False,
                         shard=Shard(3, 2))
    contexts = [mx.cpu(0), mx.cpu(1)]
    runs = [epoch_labels(loader, 0, contexts) for _ in range(3)]
    assert len(built) == 2  # one per device, for every validation
    for labels in runs:
        np.testing.assert_array_equal(labels, np.arange(loader.begin, loader.end))


@needs_dali
def test_a_resumed_epoch_is_the_epoch_of_an_unbroken_run(numbered_rec):
    cfg = cfg_for("dali", input_size=16)
    unbroken = make_loader(cfg, numbered_rec, 4, train=True, seed=7)
    pixels_of(unbroken, [0])
    resumed = make_loader(cfg, numbered_rec, 4, train=True, seed=7)
    a, la = pixels_of(unbroken, [1])
    b, lb = pixels_of(resumed, [1])
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(a, b)


@needs_dali
def test_outputs_are_copied_synchronously(numbered_rec, monkeypatch):
    from unittest import mock

    import mxnet as mx
    from nvidia.dali import types
    from nvidia.dali.backend import TensorGPU
    from nvidia.dali.plugin import mxnet as plugin

    from gluon_tricks.data import dali

    # a GPU tensor (a stand-in: no GPU here) is copied with non_blocking=False
    tensor = mock.Mock(spec=TensorGPU)
    tensor.shape.return_value = [2, 3]
    tensor.dtype = types.FLOAT
    array = mx.nd.empty((2, 3))
    assert dali.feed(tensor, array) is array
    (pointer, stream), kwargs = tensor.copy_to_external.call_args
    assert stream is None and kwargs == {"non_blocking": False}
    # and every output of the loader goes through feed, never through the plugin's copy
    monkeypatch.setattr(plugin, "feed_ndarray", mock.Mock(side_effect=AssertionError))
    spy = mock.Mock(side_effect=dali.feed)
    monkeypatch.setattr(dali, "feed", spy)
    loader = make_loader(cfg_for("dali", input_size=16), numbered_rec, 4, train=True)
    batches = len(pixels_of(loader, [0])[1]) // 4
    assert batches == 9 and spy.call_count == 2 * batches


@needs_dali
def test_nvjpeg_must_load_before_a_gpu_pipeline(tmp_path):
    import ctypes

    from gluon_tricks.data.dali import nvjpeg_library
    from gluon_tricks.gpu.cuda_libs import alias_library

    try:
        ctypes.CDLL("libnvjpeg.so.12")
        pytest.skip("this host has nvJPEG on the loader's path")
    except OSError:
        pass
    with pytest.raises(DataError, match=r"libnvjpeg.so.12 .* pip install nvidia-nvjpeg-cu12=="):
        nvjpeg_library(str(tmp_path))
    # the folder of the nvidia-nvjpeg-cu12 wheel, with a stand-in library of that soname
    folder = tmp_path / "nvjpeg" / "lib"
    folder.mkdir(parents=True)
    (folder / "libnvjpeg.so.12").write_bytes(alias_library("libnvjpeg.so.12", "libc.so.6", 62))
    assert nvjpeg_library(str(tmp_path)) == str(folder / "libnvjpeg.so.12")


@needs_dali
def test_records_read_as_mxnet_reads_them(tmp_path):
    """A record whose bytes hold RecordIO's magic number (stored in parts) and one with a
    label array (flag > 0): the feed's bytes and label are MXNet's own reader's."""
    import struct

    from mxnet import recordio

    from gluon_tricks.data.dali import RecordFeed
    from gluon_tricks.data.records import read_index

    magic = struct.pack("<I", 0xCED7230A)
    # after the 24-byte IRHeader the magic numbers fall on 4-byte boundaries, where dmlc's
    # writer splits a record
    images = [magic * 3 + b"cd" * 50 + magic + b"e", bytes(range(256)) * 3]
    headers = [recordio.IRHeader(0, 7.0, 0, 0), recordio.IRHeader(2, [3.0, 9.0], 1, 0)]
    prefix = str(tmp_path / "parts")
    writer = recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
    for i, (header, image) in enumerate(zip(headers, images)):
        writer.write_idx(i, recordio.pack(header, image))
    writer.close()
    offsets = np.array([offset for _, offset in read_index(prefix + ".rec")])
    feed = RecordFeed(prefix + ".rec", offsets, 2, (0, 2))
    reader = recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "r")
    for i in range(2):
        header, image = recordio.unpack(reader.read_idx(i))
        got, label = feed.record(i)
        assert got.tobytes() == image == images[i]
        assert label.tolist() == [np.asarray(header.label).reshape(-1)[0]]
    with open(prefix + ".rec", "rb") as f:
        assert struct.unpack("<II", f.read(8))[1] >> 29 == 1  # the first record is in parts
