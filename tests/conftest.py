"""Fixtures shared by the test folders: the digits demo set, built once per session, and a
small slice of it for the tests of plumbing, and `make demo`'s trained run; and how
`make test` splits the suite over its pytest-xdist workers."""
import os

import pytest

from gluon_tricks.data.demo import make_demo_data

from helpers import load_tool, subset_rec, train_run, write_run

# the slice: 6 training batches of 64 and a last validation batch of 56, every digit in both
SMALL_TRAIN, SMALL_VAL = 384, 120
TINY_TRAIN, TINY_VAL = 128, 100


# session fixtures that train a network: every test that needs one runs on one worker, so
# that it is trained once
SHARED_RUNS = ("learned32", "trained_demo")
# the Horovod jobs: one at a time, each takes both cores
HOROVOD_TESTS = ("tests/run/test_horovod.py",)


def xdist_group(item):
    """The worker group of a test under ``--dist loadgroup``: the shared run it needs, else
    its module when it needs a module's fixture (built once per worker that runs it), else
    none (scheduled on its own)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    path = os.path.relpath(str(item.path), os.path.dirname(os.path.dirname(__file__)))
    if path in HOROVOD_TESTS:
        return "horovod"
    for name in SHARED_RUNS:
        if name in info.names_closure:
            return name
    for name in info.names_closure:
        if any(d.scope == "module" for d in info.name2fixturedefs.get(name, ())):
            return path
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = xdist_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def demo32(tmp_path_factory):
    """The 32 px digits demo set: {'train': path.rec, 'val': path.rec} (1437 / 360 images)."""
    out = tmp_path_factory.mktemp("demo32")
    make_demo_data(str(out), size=32, seed=0)
    return {"train": str(out / "train.rec"), "val": str(out / "val.rec")}


def first_records(demo32, out, train, val):
    """The first ``train`` / ``val`` records of the demo set (shuffled when packed) as
    train.rec / val.rec of ``out``, and their counts as 'train_images' / 'val_images'."""
    sets = {split: subset_rec(demo32[split], str(out / split), limit=n)
            for split, n in (("train", train), ("val", val))}
    return dict(sets, train_images=train, val_images=val)


@pytest.fixture(scope="session")
def small32(demo32, tmp_path_factory):
    """SMALL_TRAIN / SMALL_VAL records (:func:`first_records`): for tests of what a run does
    that need a few batches an epoch (log intervals, a kill in a running epoch), not of what
    it learns."""
    return first_records(demo32, tmp_path_factory.mktemp("small32"), SMALL_TRAIN, SMALL_VAL)


@pytest.fixture(scope="session")
def tiny32(demo32, tmp_path_factory):
    """TINY_TRAIN / TINY_VAL records (:func:`first_records`): two training batches of 64,
    and validation batches of 64 and 36, for tests of a run's plumbing (resume, kills,
    devices, ranks, refusals, the ablation ladder, the reports)."""
    return first_records(demo32, tmp_path_factory.mktemp("tiny32"), TINY_TRAIN, TINY_VAL)


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
