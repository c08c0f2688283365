"""The input pipeline of the paper's §2.1 over MXNet RecordIO files.

For the trainer::

    cfg = DataConfig(input_size=224, num_workers=4)          # docs/notes.md §1
    check_rec("train.rec")                                    # DataError, one line, if bad
    check_classes("val.rec", 1000, "train_classes.txt")       # the same class list
    label_set("train.rec"), count_records("train.rec")       # from headers, no decoding
    train, val = make_loaders(cfg, "train.rec", "val.rec", batch_size=32,
                              shard=Shard(num_parts=ranks, part_index=rank), seed=0)
    for data, label in train.epoch(e): ...                    # (N,3,S,S), (N,) float32, CPU

Packing (``pack.pack_images``) and the digits demo set (``demo.make_demo_data``) live in
their own modules, used by ``tools/pack_rec.py`` and ``tools/make_demo_data.py``.
"""
from .config import DataConfig
from .loaders import GluonLoader, RecordIOLoader, Shard, make_loader, make_loaders
from .records import (DataError, check_classes, check_images, check_labels, check_rec,
                      classes_file, count_records, label_set, read_classes, shard_range)

__all__ = ["DataConfig", "DataError", "GluonLoader", "RecordIOLoader", "check_classes",
           "check_images", "check_labels", "check_rec", "classes_file", "count_records",
           "label_set", "make_loader", "make_loaders", "read_classes", "Shard", "shard_range"]
