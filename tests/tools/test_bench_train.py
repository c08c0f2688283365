"""tools/bench_train.py --profile: the operator table and the per-convolution table describe
the network that was stepped (every convolution once, one optimizer update per trainable
parameter), and the shares add up."""
import os
import re
import subprocess
import sys

import pytest

from gluon_tricks.models import get_model

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


def rows(lines, first_cell):
    """The data rows of the markdown table whose header starts with ``first_cell``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    out = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        out.append([c.strip() for c in line.strip("|").split("|")])
    return out


def test_profile_tables_match_the_network():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench_train.py"),
                           "--profile", "--case", "resnet18_v1b:32:8", "--steps", "2",
                           "--warmup", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    net = get_model("resnet18_v1b", classes=10)
    convolutions = sum(type(b).__name__ == "Conv2D" for b in _blocks(net))
    trainable = sum(p.grad_req != "null" for p in net.collect_params().values())
    assert (convolutions, trainable) == (20, 62)  # 17 + 3 shortcuts; 20 x (w) + 20 x BN + fc

    ops = {r[0]: r for r in rows(lines, "operator")}
    assert int(ops["Convolution"][1]) == int(ops["_backward_Convolution"][1]) == convolutions
    assert int(ops["nag_mom_update"][1]) == trainable
    shares = [float(r[3].rstrip("%")) for r in ops.values()]
    assert sum(shares) == pytest.approx(100, abs=0.1 * len(shares))  # rounding of each row
    step = re.search(r"([\d.]+) ms per step, of which ([\d.]+) ms in operators", done.stdout)
    assert step and 0 < float(step.group(2)) <= float(step.group(1))

    per_conv = rows(lines, "convolution")
    assert [int(r[0]) for r in per_conv] == list(range(1, convolutions + 1))
    for _, forward, backward, ratio in per_conv:
        assert float(forward) >= 0 and float(backward) >= 0
        if float(forward) >= 0.5:  # the printed ms are rounded to 0.01
            assert float(ratio) == pytest.approx(float(backward) / float(forward), rel=0.05,
                                                 abs=0.1)


def _blocks(block):
    yield block
    for child in block._children.values():
        yield from _blocks(child)
