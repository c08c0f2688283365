"""The trainer's checks of its two sets before any work (train.loop.checked_loaders): a
validation set packed without one class is refused, naming both class lists."""
import mxnet as mx
import pytest

from gluon_tricks.data import DataError, classes_file
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.train.loop import checked_loaders
from helpers import tiny_config
from tiny_sets import CLASSES, pack_classes


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("checked_loaders")
    return {name: pack_classes(str(root / name), names)
            for name, names in (("train", CLASSES), ("val", CLASSES),
                                ("val_no_three", CLASSES[:3] + CLASSES[4:]))}


def test_sets_of_one_class_list_pass(sets):
    cfg = tiny_config(batch_size=4)
    train, val = checked_loaders(cfg, sets["train"], sets["val"], [mx.cpu()], SingleProcess())
    assert train.num_samples == val.num_samples == 20


def test_a_validation_set_without_one_class_is_refused(sets):
    """Its labels 0..8 fit the 10 classes, so the label check alone let it through and
    every class after class3 was scored against the wrong label (validation 1.37%)."""
    cfg = tiny_config(batch_size=4)
    with pytest.raises(DataError) as e:
        checked_loaders(cfg, sets["train"], sets["val_no_three"], [mx.cpu()], SingleProcess())
    msg = str(e.value)
    assert "\n" not in msg and classes_file(sets["val_no_three"]) in msg
    assert classes_file(sets["train"]) in msg and "'class3'" in msg
