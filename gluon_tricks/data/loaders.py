"""Training and validation loaders over a packed RecordIO set, for the paper's §2.1.

Two backends with one interface (selected by ``DataConfig.backend``):

- ``"recordio"``: MXNet's C++ ``ImageRecordIter`` with the arguments of GluonCV's
  ``train_imagenet.py`` (``get_data_rec``); the fast path.
- ``"gluon"``: ``gluon.data.vision.ImageRecordDataset`` + ``transforms`` + ``DataLoader``
  (GluonCV's ``get_data_loader``); slower, but every step is Python one can read.

A loader has ``num_samples`` (records of its shard), ``batches_per_epoch`` and
``epoch(e)``, an iterator over ``(data, label)``: ``data`` float32 NDArray (N, 3, S, S)
normalised as (pixel - mean_rgb) / std_rgb, ``label`` float32 NDArray (N,) of class indices,
both in host memory: ``mx.cpu()``, or, for a loader that feeds GPU ``pin_device``, page-locked
``mx.cpu_pinned(pin_device)``, from which the copy to the GPU is direct (MXNet's default for
``ImageRecordIter``, and GluonCV's ``pin_memory``).

Batches of the RecordIO backend are the C++ iterator's own buffers, not copies (a copy costs
a quarter of the validation throughput on small images): they stay valid while up to
``cfg.prefetch_batches`` further batches are pulled; then the prefetcher recycles the oldest
one, after ``WaitToWrite()`` on its data and label arrays (src/io/iter_prefetcher.h), so
engine operations still queued on them finish first. Streaming use, one step per batch, is
safe; to keep a batch longer, ``.copy()`` it.

Training: each epoch builds a fresh iterator whose shuffle seed is derived from (seed, epoch,
shard), so a run resumed at epoch e sees the batches it would have seen (exactly, with one
decoding thread: MXNet gives each decoding thread its own generator, and which thread
decodes which record depends on timing). The augmentation draws come from those generators
in the order records are decoded, so every image of an epoch gets its own crop, flip and
jitter. (MXNet seeds those generators itself, the same for every new iterator: the epochs
share one sequence of draws, dealt each epoch to a new permutation of the images.) ``ImageRecordIter``'s ``seed_aug`` is not used: MXNet 1.9.1 re-seeds the generator
before each record from ``seed_aug`` plus the record's position *in its batch*
(src/io/iter_image_recordio_2.cc, ``ParseChunk``), so image i of every batch of an epoch got
the same draws: only batch-size different augmentations per epoch. (GluonCV's script passes
no ``seed_aug`` either.) Every
shard yields ``(num_records // num_parts) // batch_size`` full batches (the uneven tail is
dropped), so data-parallel ranks stay in step; MXNet's shards are ceil(N / parts) long, so
the last shard may be a few records short and then tops up its last batch with records it
already served that epoch.

Validation: each epoch reads every record of its shard exactly once. A reused
``ImageRecordIter`` does not (docs/notes.md §4: after ``reset()`` the wrapped-around images of the
last batch count as consumed), hence a fresh iterator per epoch, and the last batch's padding
is trimmed, so its N may be smaller than the batch size.

Shards follow MXNet's rule (``records.shard_range``): disjoint, together covering the set.
"""
import random
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from .. import seeds
from ..errors import one_line
from .records import DataError, check_images, check_rec, paths, shard_range


@dataclass(frozen=True)
class Shard:
    """The part of a record file one data-parallel rank reads: part ``part_index`` of
    ``num_parts`` (MXNet's names; the records :func:`~.records.shard_range` gives it)."""
    num_parts: int = 1
    part_index: int = 0


class Loader:
    """What both backends share: shard bookkeeping and the loader interface."""

    def __init__(self, cfg, rec_path, batch_size, train, shard=Shard(), seed=0,
                 pin_device=None):
        if batch_size <= 0:
            raise DataError(f"batch_size {batch_size}: expected a positive number")
        if cfg.input_size is None:
            raise ValueError("DataConfig.input_size must be set to build a loader")
        self.cfg = cfg
        self.rec_path, self.idx_path = paths(rec_path)[:2]
        self.batch_size = batch_size
        self.train = train
        self.num_parts, self.part_index, self.seed = shard.num_parts, shard.part_index, seed
        self.pin_device = pin_device
        self.context = mx.cpu() if pin_device is None else mx.cpu_pinned(pin_device)
        self.num_records = check_rec(rec_path)
        self.begin, self.end = shard_range(self.num_records, self.num_parts, self.part_index)
        self.num_samples = self.end - self.begin
        if train:
            # the same on every rank; MXNet's shards are ceil(N / parts) long, so the last one
            # can be up to parts - 1 records short of N // parts: it then completes its last
            # batch with records it already served this epoch (see RecordIOLoader.epoch)
            self.batches_per_epoch = (self.num_records // self.num_parts) // batch_size
        else:
            self.batches_per_epoch = -(-self.num_samples // batch_size)

    def __len__(self):
        return self.batches_per_epoch

    def epoch(self, epoch):
        """Iterator over the (data, label) batches of epoch ``epoch`` (0-based int)."""
        raise NotImplementedError

    def __repr__(self):
        kind = "train" if self.train else "val"
        return (f"{type(self).__name__}({kind}, {self.rec_path}, shard {self.part_index}/"
                f"{self.num_parts}: {self.num_samples} records, {self.batches_per_epoch} "
                f"batches of {self.batch_size})")


def train_iter_args(cfg, batch_size):
    """Keyword arguments of ``mx.io.ImageRecordIter`` for §2.1 training augmentation
    (GluonCV ``train_imagenet.py``), without paths, shard or seeds. Never passes
    ``rand_crop`` or ``*_random_scale``/``*_crop_size``: ImageRecordIter refuses them next
    to ``random_resized_crop=True`` (at the first batch, from its prefetch thread)."""
    s = cfg.input_size
    return dict(
        data_shape=(3, s, s), batch_size=batch_size,
        random_resized_crop=True,
        min_random_area=cfg.min_area, max_random_area=cfg.max_area,
        min_aspect_ratio=cfg.min_aspect_ratio, max_aspect_ratio=cfg.max_aspect_ratio,
        rand_mirror=cfg.flip,
        brightness=cfg.brightness, contrast=cfg.contrast, saturation=cfg.saturation,
        pca_noise=cfg.pca_noise,
        inter_method=cfg.interpolation,
        **_normalise_args(cfg))


def val_iter_args(cfg, batch_size):
    """Keyword arguments of ``mx.io.ImageRecordIter`` for validation: short edge resized to
    ``cfg.resize``, centre crop ``cfg.input_size`` (ImageRecordIter crops the centre unless
    ``rand_crop``), normalised; no randomness."""
    s = cfg.input_size
    return dict(data_shape=(3, s, s), batch_size=batch_size, resize=cfg.resize,
                inter_method=cfg.interpolation, **_normalise_args(cfg))


def _normalise_args(cfg):
    (mr, mg, mb), (sr, sg, sb) = cfg.mean_rgb, cfg.std_rgb
    return dict(mean_r=mr, mean_g=mg, mean_b=mb, std_r=sr, std_g=sg, std_b=sb)


class RecordIOLoader(Loader):
    """A loader on MXNet's C++ ``ImageRecordIter`` (see the module docstring)."""

    def make_iter(self, epoch, pass_index=0):
        """The fresh ``mx.io.ImageRecordIter`` of epoch ``epoch`` of this shard (training:
        pass ``pass_index`` over the shard within the epoch, 0 unless the shard is short)."""
        cfg = self.cfg
        common = dict(path_imgrec=self.rec_path, path_imgidx=self.idx_path,
                      num_parts=self.num_parts, part_index=self.part_index,
                      preprocess_threads=max(1, cfg.workers()),
                      prefetch_buffer=max(1, cfg.prefetch_batches), verbose=False,
                      device_id=-1 if self.pin_device is None else self.pin_device)
        if self.train:
            # `seed` seeds the shuffle of the index; no `seed_aug` (see the module docstring)
            return mx.io.ImageRecordIter(
                shuffle=True,
                seed=seeds.derived_seed(self.seed, epoch, self.part_index, seeds.SHUFFLE,
                                        pass_index),
                **common, **train_iter_args(cfg, self.batch_size))
        # round_batch=True (the default) fills the last batch with wrapped-around records and
        # reports how many in `pad`; with False the pad is reported 0 over garbage
        # (docs/notes.md §4)
        return mx.io.ImageRecordIter(shuffle=False, round_batch=True, **common,
                                     **val_iter_args(cfg, self.batch_size))

    def epoch(self, epoch):
        try:
            yield from self._batches(epoch)
        except mx.base.MXNetError as e:
            # an image the checks before training did not see (data.check_train_images
            # samples the training set): find it by name, as those checks would have
            check_images(self.rec_path, num_parts=self.num_parts, part_index=self.part_index)
            raise DataError(f"{self.rec_path}: MXNet cannot read a record of it "
                            f"({one_line(e, 160)}); re-pack the set (tools/pack_rec.py skips "
                            "unusable images)") from None

    def _batches(self, epoch):
        if not self.train:
            for batch in self.make_iter(epoch):
                data, label = batch.data[0], batch.label[0]
                if batch.pad:
                    data, label = data[:-batch.pad], label[:-batch.pad]
                yield data, label
            return
        produced, pass_index = 0, 0
        while produced < self.batches_per_epoch:
            # a training batch is always full: a short shard's last batch wraps around to
            # records of this pass (round_batch), and a further pass starts if still short
            for batch in self.make_iter(epoch, pass_index):
                yield batch.data[0], batch.label[0]
                produced += 1
                if produced == self.batches_per_epoch:
                    return
            pass_index += 1


class _ShardDataset(mx.gluon.data.Dataset):
    """Records [begin, end) of an ImageRecordDataset, each passed through ``transform``
    under a generator state seeded from (seed, position): the same sample gets the same
    augmentation whatever the DataLoader worker that decodes it."""

    def __init__(self, rec_path, begin, end, transform, seed=None):
        self._records = mx.gluon.data.vision.ImageRecordDataset(rec_path, flag=1)
        self._begin, self._end = begin, end
        self._transform, self._seed = transform, seed

    def __len__(self):
        return self._end - self._begin

    def __getitem__(self, i):
        img, label = self._records[self._begin + i]
        if self._seed is not None:
            s = seeds.derived_seed(self._seed, i, 0, seeds.AUGMENT)
            # RandomResizedCrop draws from `random`; flip, jitter and lighting from MXNet's
            random.seed(s)
            mx.random.seed(s)
        return self._transform(img), np.float32(label)


class _EpochSampler(mx.gluon.data.Sampler):
    """Batches of shard positions: a permutation seeded per epoch (training, tail dropped)
    or in order (validation, last batch short)."""

    def __init__(self, size, batch_size, num_batches, perm_seed=None):
        self._size, self._bs, self._nb, self._seed = size, batch_size, num_batches, perm_seed

    def __iter__(self):
        if self._seed is None:
            order = np.arange(self._size)
        else:
            # like the RecordIO backend, a short shard tops up its epoch with another pass
            rng = np.random.default_rng(self._seed)
            passes = max(1, -(-self._nb * self._bs // max(self._size, 1)))
            order = np.concatenate([rng.permutation(self._size) for _ in range(passes)])
        for b in range(self._nb):
            yield order[b * self._bs:(b + 1) * self._bs].tolist()

    def __len__(self):
        return self._nb


def gluon_transforms(cfg, train):
    """The per-image ``transforms.Compose`` of the Gluon backend: HxWx3 uint8 RGB NDArray in,
    3xSxS float32 normalised NDArray out (GluonCV ``train_imagenet.py`` get_data_loader)."""
    T = mx.gluon.data.vision.transforms
    s = cfg.input_size
    if train:
        steps = [T.RandomResizedCrop(s, scale=(cfg.min_area, cfg.max_area),
                                     ratio=(cfg.min_aspect_ratio, cfg.max_aspect_ratio),
                                     interpolation=cfg.interpolation)]
        if cfg.flip:
            steps.append(T.RandomFlipLeftRight())
        if cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue:
            steps.append(T.RandomColorJitter(brightness=cfg.brightness, contrast=cfg.contrast,
                                             saturation=cfg.saturation, hue=cfg.hue))
        if cfg.pca_noise:
            steps.append(T.RandomLighting(cfg.pca_noise))
    else:
        steps = [T.Resize(cfg.resize, keep_ratio=True, interpolation=cfg.interpolation),
                 T.CenterCrop(s, interpolation=cfg.interpolation)]
    # ToTensor divides by 255, so the [0, 255] mean and std are divided likewise
    steps += [T.ToTensor(), T.Normalize(tuple(m / 255 for m in cfg.mean_rgb),
                                        tuple(d / 255 for d in cfg.std_rgb))]
    return T.Compose(steps)


class GluonLoader(Loader):
    """A loader on Gluon's ImageRecordDataset + transforms + DataLoader (see the module
    docstring). ``cfg.num_workers`` worker processes (0 = decode in this process)."""

    def epoch(self, epoch):
        cfg = self.cfg
        if self.train:
            aug_seed = seeds.derived_seed(self.seed, epoch, self.part_index, seeds.AUGMENT)
            perm_seed = seeds.derived_seed(self.seed, epoch, self.part_index, seeds.SHUFFLE)
        else:
            aug_seed = perm_seed = None
        dataset = _ShardDataset(self.rec_path, self.begin, self.end,
                                gluon_transforms(cfg, self.train), aug_seed)
        sampler = _EpochSampler(self.num_samples, self.batch_size, self.batches_per_epoch,
                                perm_seed)
        loader = mx.gluon.data.DataLoader(dataset, batch_sampler=sampler,
                                          num_workers=cfg.workers(),
                                          pin_memory=self.pin_device is not None,
                                          pin_device_id=self.pin_device or 0)
        for data, label in loader:
            yield (data.as_in_context(self.context),
                   label.astype("float32").as_in_context(self.context))


def make_loader(cfg, rec_path, batch_size, train, shard=Shard(), seed=0, pin_device=None):
    """One loader (see the module docstring) for the :class:`Shard` ``shard`` of ``rec_path``;
    ``train`` selects the §2.1 augmentation and the drop-tail shuffled epochs; ``pin_device``:
    the GPU id batches are for (page-locked memory), None for plain memory. Raises DataError
    on a bad file or value."""
    if cfg.backend == "dali":
        try:
            from .dali import DALILoader as cls  # NVIDIA DALI is optional
        except ModuleNotFoundError as e:
            if not (e.name or "").startswith("nvidia"):
                raise
            raise DataError("data.backend dali: NVIDIA DALI is not installed; pip install "
                            "nvidia-dali-cuda120==1.35.0 (or make dali)") from None
    else:
        cls = RecordIOLoader if cfg.backend == "recordio" else GluonLoader
    return cls(cfg, rec_path, batch_size, train, shard, seed, pin_device)


def make_loaders(cfg, rec_train, rec_val, batch_size, shard=Shard(), seed=0, pin_device=None):
    """(train_loader, val_loader) over ``rec_train`` and ``rec_val`` for the data-parallel
    rank that reads :class:`Shard` ``shard``; ``batch_size`` is this rank's. Raises
    DataError."""
    train = make_loader(cfg, rec_train, batch_size, True, shard, seed, pin_device)
    val = make_loader(cfg, rec_val, batch_size, False, shard, seed, pin_device)
    return train, val
