"""Fixtures shared by the test folders: the digits demo set, built once per session, and a
small slice of it for the tests of plumbing, and `make demo`'s trained run."""
import pytest

from gluon_tricks.data.demo import make_demo_data

from helpers import load_tool, subset_rec, train_run, write_run

# the slice: 6 training batches of 64 and a last validation batch of 56, every digit in both
SMALL_TRAIN, SMALL_VAL = 384, 120


@pytest.fixture(scope="session")
def demo32(tmp_path_factory):
    """The 32 px digits demo set: {'train': path.rec, 'val': path.rec} (1437 / 360 images)."""
    out = tmp_path_factory.mktemp("demo32")
    make_demo_data(str(out), size=32, seed=0)
    return {"train": str(out / "train.rec"), "val": str(out / "val.rec")}


@pytest.fixture(scope="session")
def small32(demo32, tmp_path_factory):
    """The first SMALL_TRAIN / SMALL_VAL records of the demo set (shuffled when packed) as
    train.rec / val.rec of one folder, and their counts as 'train_images' / 'val_images':
    for tests of what a run does (resume, kills, devices, logs), not of what it learns."""
    out = tmp_path_factory.mktemp("small32")
    sets = {split: subset_rec(demo32[split], str(out / split), limit=n)
            for split, n in (("train", SMALL_TRAIN), ("val", SMALL_VAL))}
    return dict(sets, train_images=SMALL_TRAIN, val_images=SMALL_VAL)


@pytest.fixture(scope="session")
def learned32(demo32, tmp_path_factory):
    """A run folder of the demo recipe shortened to what learns in a minute: 4 epochs,
    no warmup or mixup, crops of at least half the image, lr 0.4 per 256, label smoothing
    0.1 (about 80% top-1 on an AMD EPYC). Read only: tests copy or --init it."""
    return train_run(demo32, tmp_path_factory.mktemp("learned32") / "run", "--epochs", "4",
                     "--set", "warmup_epochs=0", "--set", "base_lr_per_256=0.4",
                     "--set", "data.min_area=0.5", "--set", "mixup_alpha=0",
                     "--set", "mixup_off_epochs=0", timeout=1800)


@pytest.fixture(scope="session")
def trained_demo(demo32, tmp_path_factory):
    """The run folder `make demo` leaves (recipes/demo.yaml: ResNet-18-D, 30 epochs of the
    paper's bag with label smoothing 0.1 and mixup, about 97% top-1), trained once per
    session: the backbone of the transfer miniatures (tests marked slow)."""
    return train_run(demo32, tmp_path_factory.mktemp("trained_demo") / "run", timeout=3600)


@pytest.fixture
def tool():
    return load_tool


@pytest.fixture
def make_run():
    return write_run


@pytest.fixture(scope="session")
def trainer():
    """:func:`train_run`: a real trained run folder."""
    return train_run
