"""Fixtures shared by the test folders: the digits demo set, built once per session."""
import pytest

from gluon_tricks.data.demo import make_demo_data


@pytest.fixture(scope="session")
def demo32(tmp_path_factory):
    """The 32 px digits demo set: {'train': path.rec, 'val': path.rec} (1437 / 360 images)."""
    out = tmp_path_factory.mktemp("demo32")
    make_demo_data(str(out), size=32, seed=0)
    return {"train": str(out / "train.rec"), "val": str(out / "val.rec")}
