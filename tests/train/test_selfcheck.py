"""tools/gpu_check.py without a GPU: its measurements, table and verdicts on CPU contexts
(FP32; FP16 needs a GPU), and its refusal on a machine without one."""
import math
import os
import subprocess
import sys

import mxnet as mx

from gluon_tricks.train.selfcheck import FixedBatch, Measurement, measure, table, verdicts

from helpers import assert_one_line_error

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_measure_table_and_verdicts_on_cpu_contexts():
    # 10 steps: on 2 devices the loss of 5 steps rose on one CPU (1.84 -> 2.04) and fell on
    # another; after 10 it is below 0.03 on both, 1 device below 0.002
    runs = [measure(loop, "resnet18_v1d", devices, "float32",
                    FixedBatch(per_device=4, size=32, classes=10), steps=8, warmup=2)
            for devices in ([mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]) for loop in ("bare", "ours")]
    assert [(m.loop, m.devices) for m in runs] == [("bare", 1), ("ours", 1), ("bare", 2),
                                                   ("ours", 2)]
    for m in runs:
        assert m.images_per_sec > 0 and m.peak_mib is None and m.master_fp32 is None
        assert m.loss_scale is None  # FP32: no scaler
    text = table(runs).splitlines()
    assert len(text) == 2 + 4 and "ours / bare" in text[0]
    ours_two = text[5].split(" | ")
    assert ours_two[4] == f"{runs[3].images_per_sec / runs[2].images_per_sec:.3f}"
    assert ours_two[5] == f"{runs[3].images_per_sec / (2 * runs[1].images_per_sec):.3f}"
    checks = verdicts(runs)
    assert len(checks) == 4 and all(ok for _, ok, _ in checks), checks


def test_verdicts_fail_what_they_guard():
    def run(first, last, master=None):
        return Measurement("ours", "float16", 1, 100.0, first, last, 1024.0, 900.0, master)
    names = [(name, ok) for name, ok, _ in verdicts(
        [run(2.0, 1.0, True), run(2.0, 2.5), run(2.0, math.nan), run(2.0, 1.0, False)],
        allreduce_ok=False)]
    assert [ok for _, ok in names] == [True, True, False, False, True, False, False]
    assert names[-1][0].startswith("Horovod allreduce")


def test_refuses_without_a_gpu(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gpu_check.py")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "no GPU")
