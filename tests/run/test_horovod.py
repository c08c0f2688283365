"""Data-parallel training with Horovod (2 CPU ranks, Gloo) against single-process truths:
the ranks stay identical, they compute what one process computes on the global batch
(without BatchNorm, docs/notes.md §4), validation is exact over the whole set, only rank 0
writes, a run resumes, and a dead rank stops the job."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks import data as gt_data
from gluon_tricks.train.config import TrainConfig
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.train.metrics import evaluate
from gluon_tricks.train.nets import build_net
from helpers import module_folder
from hvd_helpers import ROOT, horovod_mxnet_available, horovodrun_command, rank_env

if not horovod_mxnet_available():
    pytest.skip("horovod with MXNet is not installed (`make horovod`)", allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_PY = os.path.join(ROOT, "recipes", "train_imagenet.py")
CLI_WORKER = os.path.join(HERE, "cli_worker.py")
# ResNet-18-D at 32 px on the digits, global batch 64 = 2 ranks x 32, with the demo's bag
# (zero gamma, no bias decay, cosine, label smoothing, mixup); one decoding thread per rank.
TINY = ["--recipe", os.path.join(ROOT, "recipes", "demo.yaml"), "--batch-size", "64",
        "--set", "warmup_epochs=1", "--set", "mixup_off_epochs=0", "--set", "log_interval=5",
        "--set", "data.num_workers=1"]


def params_of(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def epoch_records(run):
    with open(os.path.join(run, "log.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["type"] == "epoch"]


def check(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def launch(command, timeout=150, before_retry=None, **env):
    """Run ``command`` from the checkout with the ranks' environment (plus ``env``).

    Known, not understood: once in three fresh-clone runs a rank died of a segmentation
    fault right after start-up (MXNet 1.9.1 + Horovod 0.28.1, Gloo, CPU). Such a launch
    is retried once, after ``before_retry()`` clears what it left; any other failure is not.
    """
    result = subprocess.run(command, cwd=ROOT, env=rank_env(**env), capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0 and "Segmentation fault" in result.stdout + result.stderr:
        if before_retry is not None:
            before_retry()
        result = subprocess.run(command, cwd=ROOT, env=rank_env(**env), capture_output=True,
                                text=True, timeout=timeout)
    return result


def test_ranks_equal_one_process_without_batchnorm(tmp_path):
    """Gradients averaged over 2 ranks of batch 8 = one process with the batch of 16; the
    ranks start from different weights, so they agree only through the broadcast (which
    must reach the deferred-initialised layer too)."""
    worker = os.path.join(HERE, "equivalence_worker.py")
    check(launch(horovodrun_command(2, worker, str(tmp_path))))
    check(launch([sys.executable, worker, str(tmp_path)]))
    rank0, rank1 = params_of(tmp_path / "rank0.params"), params_of(tmp_path / "rank1.params")
    single = params_of(tmp_path / "single.params")
    assert rank0.keys() == rank1.keys() == single.keys()
    for name in rank0:
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)
        np.testing.assert_allclose(rank0[name], single[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.fixture(scope="module")
def two_rank_run(tiny32, tmp_path_factory):
    """2 epochs on 2 ranks through the real CLI on the small slice of the digits, in two
    launches: epoch 1 (`--stop-after 1`), where rank 0 writes to run/ and rank 1 is told to
    write to rank1/ (a machine of its own) and both dump the network they validate; then
    `--resume` of run/ by both ranks (a shared file system) for epoch 2."""
    with module_folder(tmp_path_factory, "hvd") as base:
        yield _two_rank_run(tiny32, base)


def _two_rank_run(tiny32, base):
    folder, dump = base / "run", base / "dump"
    dump.mkdir()
    out = str(base / "rank{rank}")  # rank 0 -> rank0/, rank 1 -> rank1/

    def clear_first():
        for leftover in (base / "rank0", base / "rank1", dump):
            shutil.rmtree(leftover, ignore_errors=True)
        dump.mkdir()

    first = launch(horovodrun_command(2, CLI_WORKER, *TINY, "--rec-train", tiny32["train"],
                                      "--rec-val", tiny32["val"], "--out", out, "--epochs",
                                      "2", "--stop-after", "1"),
                   before_retry=clear_first, GT_TEST_DUMP=str(dump))
    check(first)
    rank1_wrote = os.path.exists(base / "rank1")
    os.rename(base / "rank0", folder)
    records_after_first = epoch_records(folder)
    resumed = launch(horovodrun_command(2, TRAIN_PY, "--rec-train", tiny32["train"],
                                        "--rec-val", tiny32["val"], "--out", str(folder),
                                        "--resume", "--set", "data.num_workers=1"))
    check(resumed)
    return dict(run=str(folder), dump=dump, first=first, resumed=resumed,
                rank1_wrote=rank1_wrote, records_after_first=records_after_first)


def test_ranks_hold_identical_networks(two_rank_run):
    dump = two_rank_run["dump"]
    rank0, rank1 = params_of(dump / "rank0-epoch1.params"), params_of(dump / "rank1-epoch1.params")
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)
    # rank 0's checkpoint is the network both ranks validated (running statistics averaged)
    saved = params_of(os.path.join(two_rank_run["run"], "checkpoints", "epoch-0001.params"))
    for name in rank0:
        np.testing.assert_array_equal(saved[name], rank0[name], err_msg=name)


def test_only_rank0_writes(two_rank_run):
    assert not two_rank_run["rank1_wrote"]
    folder = two_rank_run["run"]
    for name in ("config.yaml", "command.json", "train.log", "log.jsonl", "best.params",
                 "checkpoints/epoch-0001.params", "checkpoints/epoch-0001.optimizer"):
        assert os.path.exists(os.path.join(folder, name)), name
    out = two_rank_run["first"].stdout
    assert "[0]<stdout>:epoch 1/2" in out and "[1]<stdout>:epoch" not in out
    assert [r["epoch"] for r in two_rank_run["records_after_first"]] == [1]


@pytest.mark.parametrize("epoch", [1, 2])
def test_validation_is_exact_over_the_whole_set(two_rank_run, tiny32, epoch):
    """The 2-rank top-1/top-5 (each rank validates its shard; counts summed) equals one
    process validating rank 0's checkpoint on the whole set."""
    record = epoch_records(two_rank_run["run"])[epoch - 1]
    assert record["epoch"] == epoch and record["val_images"] == tiny32["val_images"]
    cfg = TrainConfig(model="resnet18_v1d", classes=10, batch_size=64,
                      data={"input_size": 32, "num_workers": 1})
    net = build_net(cfg, [mx.cpu()])
    net.load_parameters(os.path.join(two_rank_run["run"], "checkpoints",
                                     f"epoch-{epoch:04d}.params"))
    _, val = gt_data.make_loaders(cfg.data, tiny32["train"], tiny32["val"], 32)
    top1, top5, n = evaluate(net, val, [mx.cpu()], "float32", SingleProcess())
    assert n == tiny32["val_images"]
    assert (round(top1 * n), round(top5 * n)) == (round(record["val_top1"] * n),
                                                  round(record["val_top5"] * n))


def test_resume_of_a_two_rank_run(two_rank_run):
    """Both ranks resume from rank 0's folder and finish epoch 2; each epoch logged once."""
    assert "resuming" in two_rank_run["resumed"].stdout
    assert [r["epoch"] for r in epoch_records(two_rank_run["run"])] == [1, 2]


def rank_processes(launcher_pid, rank):
    """The python processes of ``rank`` under horovodrun ``launcher_pid``."""
    import psutil  # a dependency of horovodrun

    found = []
    for p in psutil.Process(launcher_pid).children(recursive=True):
        try:
            if (p.environ().get("HOROVOD_RANK") == str(rank)
                    and any("train_imagenet.py" in a for a in p.cmdline())):
                found.append(p)
        except psutil.Error:  # a helper shell that just exited
            pass
    return found


def kill_tree(pid):
    import psutil

    try:
        procs = psutil.Process(pid).children(recursive=True) + [psutil.Process(pid)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def test_a_dead_rank_stops_the_job(demo32, tmp_path):
    """SIGKILL rank 1 mid-epoch: horovodrun ends rank 0 too, exits non-zero and names the
    rank that failed, well before the run would have finished."""
    job = subprocess.Popen(
        horovodrun_command(2, TRAIN_PY, *TINY, "--rec-train", demo32["train"], "--rec-val",
                           demo32["val"], "--out", str(tmp_path / "run"), "--epochs", "30"),
        cwd=ROOT, env=rank_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(120, kill_tree, [job.pid])  # never wait forever for batches
    watchdog.start()
    try:
        lines = []
        for line in job.stdout:  # wait until both ranks are training
            lines.append(line)
            if "epoch 1 batch 5/" in line:
                break
        ranks = rank_processes(job.pid, 1)
        assert ranks, "".join(lines)
        os.kill(ranks[0].pid, signal.SIGKILL)
        tic = time.time()
        rest, _ = job.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if job.poll() is None:
            kill_tree(job.pid)
            job.wait()
    assert time.time() - tic < 60
    assert job.returncode != 0
    # horovodrun names the killed rank; if rank 0 notices the lost peer first, the launcher
    # reports rank 0's exit as the failure and rank 1's SIGKILL status (137) after it
    assert "Process name: 1" in rest or "Process 1 exit with status code 137" in rest, \
        rest[-2000:]
