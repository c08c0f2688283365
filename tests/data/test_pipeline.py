"""The §2.1 pipelines against independent truths: OpenCV/numpy references for validation and
for training with augmentation off, crop geometry recovered from a coordinate image,
binomial flip rate, exact validation coverage, shards, reproducibility, and the known traps
of MXNet's iterators."""

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.cpus import usable_cpus
from gluon_tricks.data import DataConfig, DataError, Shard, make_loader, make_loaders
from gluon_tricks.data.loaders import train_iter_args
from gluon_tricks.train.config import TrainConfig

MEAN = np.array([123.68, 116.779, 103.939])
STD = np.array([58.393, 57.12, 57.375])
BACKENDS = ["recordio", "gluon"]
NO_COLOUR = dict(brightness=0, contrast=0, saturation=0, pca_noise=0)


def cfg_for(backend, **kw):
    """The paper's pipeline (224 px unless ``kw`` says otherwise) on one decoding thread."""
    kw.setdefault("input_size", 224)
    return DataConfig(backend=backend, num_workers=1 if backend == "recordio" else 0, **kw)


def to_pixels(data):
    """(N, 3, S, S) normalised NDArray -> (N, S, S, 3) float64 pixels in [0, 255]."""
    x = data.asnumpy().transpose(0, 2, 3, 1).astype(np.float64)
    return x * STD + MEAN


def collect(loader, epoch):
    batches = [(d.asnumpy(), y.asnumpy()) for d, y in loader.epoch(epoch)]
    return np.concatenate([d for d, _ in batches]), np.concatenate([y for _, y in batches])


def test_defaults_are_the_papers():
    cfg = DataConfig(input_size=224)
    assert cfg.resize == 256
    # a training configuration fills in the network's own size
    assert TrainConfig(model="resnet50_v1d").data.input_size == 224
    assert TrainConfig(model="inception_v3").data.resize == 342
    # decoding threads: as asked, else the CPUs this process may use shared by its ranks
    cores = usable_cpus()
    assert DataConfig(num_workers=3).workers(8) == 3
    assert DataConfig().workers() == cores and DataConfig().workers(2 * cores) == 1
    assert DataConfig(input_size=299).resize == 342  # docs/notes.md §1: 299 / 0.875
    # GluonCV's train_imagenet.py: resize = int(math.ceil(input_size / crop_ratio)); the
    # nearest integer differs at sizes such as 100 (114.29 -> 115, not 114) and 32 (36.57)
    for size, resize in ((100, 115), (32, 37), (160, 183), (192, 220), (224, 256)):
        assert DataConfig(input_size=size).resize == resize, size
        assert resize == -(-size * 8 // 7)  # ceil(size / 0.875) in integers
    assert DataConfig(input_size=100, crop_ratio=0.9).resize == 112  # 111.1 up
    assert (cfg.min_area, cfg.max_area) == (0.08, 1.0)
    assert cfg.min_aspect_ratio == 3 / 4 and cfg.max_aspect_ratio == 4 / 3
    assert cfg.brightness == cfg.contrast == cfg.saturation == 0.4 and cfg.pca_noise == 0.1
    assert cfg.flip and cfg.hue == 0
    np.testing.assert_allclose(cfg.mean_rgb, MEAN)
    np.testing.assert_allclose(cfg.std_rgb, STD)
    with pytest.raises(DataError, match="hue"):
        DataConfig(hue=0.1)
    with pytest.raises(DataError, match="backend"):
        DataConfig(backend="torch")


def reference_val(img, resize=256, crop=224):
    """docs/notes.md §1 validation, with OpenCV: short edge -> resize, centre crop, normalise."""
    h, w = img.shape[:2]
    size = (w * resize // h, resize) if w >= h else (resize, h * resize // w)
    out = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR).astype(np.float64)
    y0, x0 = (out.shape[0] - crop) // 2, (out.shape[1] - crop) // 2
    return out[y0:y0 + crop, x0:x0 + crop]


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_equals_opencv_reference(val_rec, val_images, backend):
    loader = make_loader(cfg_for(backend), val_rec, 4, train=False)
    data, labels = collect(loader, 0)
    assert data.shape == (6, 3, 224, 224) and data.dtype == np.float32
    np.testing.assert_array_equal(labels, np.arange(6))
    got = to_pixels(mx.nd.array(data))
    for i, img in enumerate(val_images):
        assert np.abs(got[i] - reference_val(img)).max() <= 1.01  # one grey level
    again, _ = collect(loader, 1)
    np.testing.assert_array_equal(again, data)  # deterministic, epoch after epoch


def test_gluon_validation_equals_recordio_on_jpeg_digits(demo_dir):
    rec = demo_dir + "/val.rec"
    outs = [collect(make_loader(cfg_for(b, input_size=28), rec, 64, train=False), 0)
            for b in BACKENDS]
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    # both decode with OpenCV/libjpeg and resize bilinearly: one grey level (/std) at most
    assert np.abs(outs[0][0] - outs[1][0]).max() <= 1.01 / STD.min()


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_is_exact_every_epoch_and_shards_cover(numbered_rec, backend):
    cfg = cfg_for(backend, input_size=16)
    for parts in (1, 3):
        seen = []
        for p in range(parts):
            loader = make_loader(cfg, numbered_rec, 8, train=False, shard=Shard(parts, p))
            per_epoch = [collect(loader, e)[1] for e in range(2)]
            assert len(per_epoch[0]) == len(per_epoch[1]) == loader.num_samples
            np.testing.assert_array_equal(per_epoch[0], per_epoch[1])
            seen.extend(per_epoch[0].astype(int).tolist())
        assert sorted(seen) == list(range(37))  # every record exactly once


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_shards_disjoint_same_length_and_reproducible(numbered_rec, backend):
    cfg = cfg_for(backend, input_size=16)
    parts, bs = 3, 4
    shards = []
    for p in range(parts):
        loader = make_loader(cfg, numbered_rec, bs, train=True, shard=Shard(parts, p),
                             seed=7)
        assert loader.batches_per_epoch == (37 // parts) // bs == 3
        data0, labels0 = collect(loader, 0)
        assert len(labels0) == loader.batches_per_epoch * bs
        # labels are record numbers: a shard reads only its own contiguous records
        assert set(labels0.astype(int)) <= set(range(loader.begin, loader.end))
        again = collect(loader, 0)
        np.testing.assert_array_equal(again[0], data0)  # same (seed, epoch): same batches
        np.testing.assert_array_equal(again[1], labels0)
        data1, labels1 = collect(loader, 1)
        assert not np.array_equal(data1, data0)  # another epoch: other order/augmentation
        shards.append(set(labels0.astype(int)) | set(labels1.astype(int)))
        if loader.num_samples >= len(labels0):  # a full shard serves no record twice
            assert len(set(labels0.astype(int))) == len(labels0)
    assert not (shards[0] & shards[1] or shards[0] & shards[2] or shards[1] & shards[2])
    other_seed = make_loader(cfg, numbered_rec, bs, train=True, shard=Shard(parts), seed=8)
    assert not np.array_equal(collect(other_seed, 0)[0], collect(
        make_loader(cfg, numbered_rec, bs, train=True, shard=Shard(parts), seed=7), 0)[0])


def crop_geometry(pixels, blue):
    """From one output (S, S, 3) of the coordinate image: (crop width, crop height in source
    pixels, flipped, max residual of a linear fit), by fitting x = R and y = G as straight
    lines of the output column and row."""
    s = pixels.shape[0]
    cols = np.arange(s)
    r, g = pixels[:, :, 0], pixels[:, :, 1]
    slope_x, icpt_x = np.polyfit(cols, r.mean(axis=0), 1)
    slope_y, icpt_y = np.polyfit(cols, g.mean(axis=1), 1)
    # every row of R and every column of G must be the same straight line: a resampling of
    # one rectangle of the source (mxnet#16925 produced garbage from an overlapping buffer)
    resid = max(np.abs(r - (slope_x * cols + icpt_x)[None, :]).max(),
                np.abs(g - (slope_y * cols + icpt_y)[:, None]).max(),
                np.abs(pixels[:, :, 2] - blue).max())
    return abs(slope_x) * s, abs(slope_y) * s, slope_x < 0, resid


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_resized_crop_geometry_and_flip_rate(coord, coord_rec, backend):
    width, height, blue, _ = coord
    cfg = cfg_for(backend, input_size=32, **NO_COLOUR)
    loader = make_loader(cfg, coord_rec, 32, train=True, seed=3)
    pixels = np.concatenate([to_pixels(mx.nd.array(collect(loader, e)[0])) for e in range(6)])
    assert pixels.min() >= -0.6 and pixels[..., 0].max() <= width - 1 + 0.6
    assert pixels[..., 1].max() <= height - 1 + 0.6
    geo = np.array([crop_geometry(p, blue) for p in pixels])
    w, h, flipped, resid = geo.T
    assert resid.max() < 2.0
    area = w * h / (width * height)
    aspect = w / h
    # crop sides are whole pixels (about 45 at the smallest): allow their rounding
    assert area.min() >= 0.08 * 0.95 and area.max() <= 1.02
    assert aspect.min() >= 0.75 * 0.97 and aspect.max() <= 4 / 3 * 1.03  # mxnet#14505
    assert area.min() < 0.2 and area.max() > 0.7  # the whole range is used
    assert aspect.min() < 0.85 and aspect.max() > 1.2
    n = len(flipped)
    assert abs(flipped.mean() - 0.5) <= 4 * np.sqrt(0.25 / n)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_image_of_an_epoch_gets_its_own_augmentation(coord, coord_rec, backend):
    """64 copies of one image in batches of 16: the 64 crops of an epoch are (nearly) all
    different. ImageRecordIter's seed_aug re-seeds before each record from its position in
    the batch, which gave every batch of an epoch the same 16 crops."""
    width, height, blue, _ = coord
    cfg = cfg_for(backend, input_size=32, **NO_COLOUR)
    loader = make_loader(cfg, coord_rec, 16, train=True, seed=3)
    pixels = to_pixels(mx.nd.array(collect(loader, 0)[0]))
    geo = {tuple(np.round(crop_geometry(p, blue)[:3], 1)) for p in pixels}
    assert len(pixels) == 64 and len(geo) > 48


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_without_augmentation_equals_opencv_resize(coord, coord_rec, backend):
    width, height, _, image = coord
    # area 1 at the image's own aspect ratio: the crop is the whole image
    ratio = width / height
    cfg = cfg_for(backend, input_size=48, min_area=1.0, max_area=1.0, min_aspect_ratio=ratio,
                  max_aspect_ratio=ratio, flip=False, **NO_COLOUR)
    data, _ = collect(make_loader(cfg, coord_rec, 8, train=True), 0)
    ref = (cv2.resize(image, (48, 48), interpolation=cv2.INTER_LINEAR) - MEAN) / STD
    got = data.transpose(0, 2, 3, 1)
    assert np.abs(got - ref[None]).max() <= 1.01 / STD.min()


def test_colour_augmentation_is_applied(demo_dir):
    cfg = cfg_for("recordio", input_size=24)
    plain = cfg.replace(**NO_COLOUR)
    a = collect(make_loader(cfg, demo_dir + "/val.rec", 32, train=True), 0)[0]
    b = collect(make_loader(plain, demo_dir + "/val.rec", 32, train=True), 0)[0]
    assert a.shape == b.shape and np.abs(a - b).mean() > 0.05


def test_random_resized_crop_refuses_rand_crop_and_we_never_pass_it(coord_rec):
    # the trap: ImageRecordIter refuses these beside random_resized_crop=True, from its
    # prefetch thread (Python's MXDataIter pulls a first batch in its constructor)
    args = train_iter_args(DataConfig(input_size=32), 4)
    forbidden = {"rand_crop", "min_random_scale", "max_random_scale", "min_crop_size",
                 "max_crop_size"}
    assert args["random_resized_crop"] and not forbidden & set(args)
    with pytest.raises(mx.MXNetError, match="random_resized_crop"):
        it = mx.io.ImageRecordIter(path_imgrec=coord_rec, path_imgidx=coord_rec[:-4] + ".idx",
                                   preprocess_threads=1, verbose=False, rand_crop=True, **args)
        it.next()
    loader = make_loader(DataConfig(input_size=32, num_workers=1), coord_rec, 4, train=True)
    data, label = next(iter(loader.epoch(0)))
    assert data.shape == (4, 3, 32, 32) and data.dtype == np.float32
    assert label.shape == (4,) and label.dtype == np.float32 and data.context == mx.cpu()


def test_gluon_backend_accepts_hue(coord_rec):
    cfg = cfg_for("gluon", input_size=16, hue=0.1)
    data, _ = next(iter(make_loader(cfg, coord_rec, 4, train=True).epoch(0)))
    assert data.shape == (4, 3, 16, 16)


def test_make_loaders_interface(demo_dir):
    train, val = make_loaders(DataConfig(input_size=32, num_workers=1), demo_dir + "/train.rec",
                              demo_dir + "/val.rec", 64, shard=Shard(2, 1), seed=0)
    assert train.num_samples == 1437 - 719 and train.batches_per_epoch == (1437 // 2) // 64
    assert val.num_samples == 180 and val.batches_per_epoch == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_last_shard_still_runs_every_batch(numbered_rec, backend):
    # 37 records over 8 ranks: MXNet's shards hold 5 records, the last one 2; every rank
    # must still run (37 // 8) // 2 = 2 full batches
    cfg = cfg_for(backend, input_size=16)
    for p in (0, 7):
        loader = make_loader(cfg, numbered_rec, 2, train=True, shard=Shard(8, p))
        assert loader.batches_per_epoch == 2
        labels = collect(loader, 0)[1].astype(int)
        assert len(labels) == 4 and set(labels) <= set(range(loader.begin, loader.end))


def test_gluon_train_batches_do_not_depend_on_worker_count(numbered_rec):
    # each sample's augmentation is seeded from (seed, epoch, position), not from whichever
    # forked worker (with a copy of the parent's generator state) happens to decode it
    cfg = cfg_for("gluon", input_size=16)
    one = collect(make_loader(cfg, numbered_rec, 4, train=True, seed=2), 1)
    two = collect(make_loader(cfg.replace(num_workers=2), numbered_rec, 4, train=True, seed=2), 1)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_for_a_gpu_are_in_page_locked_memory(demo_dir, backend):
    """pin_device: MXNet's cpu_pinned memory (it exists in the CPU build too), training and
    validation alike, values as in plain memory."""
    cfg = cfg_for(backend, input_size=32)
    rec = demo_dir + "/val.rec"
    plain, pinned = (make_loader(cfg, rec, 64, train=False, pin_device=p) for p in (None, 0))
    (a, la), (b, lb) = (next(iter(loader.epoch(0))) for loader in (plain, pinned))
    assert a.context == mx.cpu() and b.context == mx.cpu_pinned(0) == lb.context
    np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    train = make_loader(cfg, demo_dir + "/train.rec", 64, train=True, pin_device=0)
    assert next(iter(train.epoch(0)))[0].context == mx.cpu_pinned(0)
