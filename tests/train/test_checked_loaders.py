"""The trainer's checks of its two sets before any work (train.loop.checked_loaders): a
validation set packed without one class is refused, naming both class lists."""
import mxnet as mx
import pytest

from gluon_tricks.data import DataError, classes_file
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.train.loop import checked_loaders
from helpers import CLASSES, pack_classes, tiny_config


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


def test_a_training_set_not_larger_than_the_validation_set_gets_a_note(sets):
    from gluon_tricks.train.loop import sets_note
    assert "same file" in sets_note(sets["train"], sets["train"], 20, 20)
    assert "swapped" in sets_note(sets["val"], sets["train"], 20, 20)
    assert "swapped" in sets_note(sets["train"], sets["val"], 10, 300)
    assert sets_note(sets["train"], sets["val"], 300, 20) is None


def test_an_undecodable_training_image_unchecked_before_is_one_error_naming_it(small32,
                                                                               tmp_path):
    """With data.check_train_images: 0 nothing looks at the training images before the
    epoch; MXNet's iterator then fails on the bad one (an OpenCV assertion, a traceback):
    the loader names the record instead."""
    from mxnet import recordio
    from gluon_tricks.train.loop import train
    reader = recordio.MXIndexedRecordIO(small32["train"][:-4] + ".idx", small32["train"], "r")
    bad = str(tmp_path / "train")
    writer = recordio.MXIndexedRecordIO(bad + ".idx", bad + ".rec", "w")
    for key in sorted(reader.keys):
        header, img = recordio.unpack(reader.read_idx(key))
        writer.write_idx(key, recordio.pack(header, b"not an image" * 10 if key == 100 else img))
    writer.close()
    cfg = tiny_config(epochs=1, warmup_epochs=0, mixup_alpha=0.0,
                      data=dict(input_size=32, num_workers=1, check_train_images=0))
    with pytest.raises(DataError) as e:
        train(cfg, bad + ".rec", small32["val"], str(tmp_path / "run"))
    assert "\n" not in str(e.value) and str(e.value).startswith(
        f"{bad}.rec: the image of record 100 (key 100,")
