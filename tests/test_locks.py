"""One writer per output (gluon_tricks.locks): a second writer of a lock file, a pack
prefix or an export is refused in one line naming the holder, before it writes anything; a
holder killed with -9 leaves no stale lock."""
import contextlib
import errno
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import mxnet as mx
import pytest

from gluon_tricks.data.pack import pack_images
from gluon_tricks.errors import RunError, UserError
from gluon_tricks.export.gluoncv import export_to_gluoncv
from gluon_tricks.locks import FileLock
from gluon_tricks.models import get_model
from gluon_tricks.run.folder import RunFolderError, replace_atomically
from gluon_tricks.run.lifecycle import Launch, open_run
from gluon_tricks.train.config import RECIPES

from helpers import tiny_config

HOLD = os.path.join(os.path.dirname(__file__), "hold_lock.py")


@contextlib.contextmanager
def held(path):
    """Another process holding the lock ``path`` until the block ends (then it releases it
    and exits); yields the process."""
    holder = subprocess.Popen([sys.executable, HOLD, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=600)


def names_holder(message, holder):
    return "\n" not in message and f"pid {holder.pid} on {socket.gethostname()} since" in message


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    path = str(tmp_path / "out.lock")
    with held(path) as holder:
        with pytest.raises(RunError) as refused:
            FileLock(path, "the output", RunError).acquire()
        assert names_holder(str(refused.value), holder), refused.value
        assert "the output is in use" in str(refused.value)
        holder.kill()  # kill -9: the OS releases the lock, the file stays
        holder.wait(timeout=600)
        assert os.path.exists(path)
        with FileLock(path, "the output", RunError):
            pass
    assert not os.path.exists(path)


def test_unwritable_place_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="cannot write there"):
        FileLock(str(tmp_path / "file" / "out.lock"), "x", RunError).acquire()


def test_run_folder_has_one_owner_on_the_root_rank(tmp_path):
    """Only the root rank of a data-parallel job locks (and writes) the run folder; a
    refused open leaves no folder of its own behind."""
    out = str(tmp_path / "run")
    cfg = tiny_config()
    with open_run(out, Launch(), cfg, RECIPES):
        with pytest.raises(RunFolderError, match=f"{out} is in use by pid {os.getpid()}"):
            open_run(out, Launch(), cfg, RECIPES)
        other_rank = SimpleNamespace(is_root=False, barrier=lambda: None)
        with open_run(out, Launch(), cfg, RECIPES, dist=other_rank):
            pass
    assert not os.path.exists(out)  # nothing was written: the lock went with its folder


def test_a_second_packer_is_refused_before_writing(tmp_path):
    images = tmp_path / "images" / "a"
    images.mkdir(parents=True)
    prefix = str(tmp_path / "set")
    with held(prefix + ".lock") as holder:
        with pytest.raises(UserError) as refused:
            pack_images(str(tmp_path / "images"), prefix, force=True)
        assert names_holder(str(refused.value), holder), refused.value
    assert sorted(os.listdir(tmp_path)) == ["images"]


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """A .params file of our resnet18_v1d (5 classes)."""
    path = str(tmp_path_factory.mktemp("ours") / "ours.params")
    net = get_model("resnet18_v1d", classes=5)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(path)
    return path


def test_export_output_is_locked_and_checked_before_the_work(tmp_path, ours, monkeypatch):
    out = str(tmp_path / "o.params")
    with held(out + ".lock") as holder:
        with pytest.raises(UserError) as refused:
            export_to_gluoncv(ours, out, "resnet18_v1d")
        assert names_holder(str(refused.value), holder), refused.value
    (tmp_path / "file").write_text("")
    monkeypatch.setattr("gluon_tricks.export.gluoncv.read_params", lambda *a: pytest.fail(
        "the export's work started before its output was checked"))
    with pytest.raises(UserError, match="file/o.params: cannot write there"):
        export_to_gluoncv(ours, str(tmp_path / "file" / "o.params"), "resnet18_v1d")
    assert sorted(os.listdir(tmp_path)) == ["file"]


def half_then_enospc(path, *args, **kwargs):
    with open(path, "wb") as f:
        f.write(b"\0" * 100)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_export_out_of_space_leaves_nothing_under_the_name(tmp_path, ours, monkeypatch):
    out = tmp_path / "o.params"
    monkeypatch.setattr(mx.gluon.Block, "save_parameters",
                        lambda self, path, *a, **k: half_then_enospc(path))
    with pytest.raises(UserError, match="o.params: cannot write \\(No space left on device\\)"):
        export_to_gluoncv(ours, str(out), "resnet18_v1d")
    assert os.listdir(tmp_path) == []


def test_a_write_mxnet_cannot_finish_is_one_line(tmp_path):
    """A .params file larger than the free space: MXNet's own error (as on a full tmpfs)."""
    def full(tmp):
        with open(tmp, "wb"):
            pass
        raise mx.base.MXNetError("Traceback (most recent call last):\n  File \"../3rdparty/"
                                 "dmlc-core/src/io/local_filesys.cc\", line 38\nMXNetError: "
                                 "Check failed: std: :fwrite(ptr, 1, size, fp_) == size: "
                                 "FileStream.Write incomplete")
    path = str(tmp_path / "x.params")
    with pytest.raises(RunFolderError) as failed:
        replace_atomically(path, full)
    message = str(failed.value)
    assert message.startswith(f"{path}: cannot write") and "Write incomplete" in message
    assert "Traceback" not in message and "\n" not in message
    assert os.listdir(tmp_path) == []


def test_onnx_export_is_checked_first_and_leaves_no_temporary(tmp_path, ours, monkeypatch):
    onnx = pytest.importorskip("onnx", reason="`make onnx` installs onnx")
    from gluon_tricks.data import DataConfig
    from gluon_tricks.export.onnx import export_onnx
    from gluon_tricks.infer.checkpoint import Checkpoint
    ckpt = Checkpoint("x", ours, "resnet18_v1d", 5, 0.0, "paper", DataConfig(input_size=32))
    (tmp_path / "file").write_text("")
    with monkeypatch.context() as m:
        m.setattr("gluon_tricks.export.onnx.load_net", lambda *a: pytest.fail(
            "the export's work started before its output was checked"))
        with pytest.raises(UserError, match="file/m.onnx: cannot write there"):
            export_onnx(ckpt, str(tmp_path / "file" / "m.onnx"))
    monkeypatch.setattr(onnx, "save", lambda model, path: half_then_enospc(path))
    with pytest.raises(UserError, match="m.onnx: cannot write \\(No space left on device\\)"):
        export_onnx(ckpt, str(tmp_path / "m.onnx"))
    assert sorted(os.listdir(tmp_path)) == ["file"]
