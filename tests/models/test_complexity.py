"""Table 5's model columns (paper §4): our graph counts against the paper's numbers."""
import subprocess
import sys
import os

import pytest

from gluon_tricks.models import get_model
from gluon_tricks.models.complexity import count

from helpers import assert_one_line_error

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.parametrize("name,gflops", [("resnet50_v1", 3.8), ("resnet50_v1b", 4.1),
                                         ("resnet50_v1c", 4.3), ("resnet50_v1d", 4.3)])
def test_table5_params_and_flops_within_3_percent(name, gflops):
    c = count(get_model(name), 224)
    assert c.macs / 1e9 == pytest.approx(gflops, rel=0.03)
    assert c.params / 1e6 == pytest.approx(25, rel=0.03)


def test_counts_follow_closed_forms():
    """A hand count: ResNet-C's deep stem adds 3x3 convs 3->32 (s2), 32->32, 32->64 at 112x112
    in place of the 7x7 3->64 conv; nothing else differs from ResNet-B."""
    b, c = count(get_model("resnet50_v1b"), 224), count(get_model("resnet50_v1c"), 224)
    stem_c = 112 * 112 * 9 * (3 * 32 + 32 * 32 + 32 * 64)
    stem_b = 112 * 112 * 49 * 3 * 64
    assert c.macs - b.macs == stem_c - stem_b
    assert c.params - b.params == (9 * (3 * 32 + 32 * 32 + 32 * 64) + 2 * (32 + 32)) - 49 * 3 * 64


def test_model_table_prints_table5_and_rejects_unknown_names():
    tool = os.path.join(ROOT, "tools", "model_table.py")
    out = subprocess.run([sys.executable, tool], capture_output=True, text=True, check=True).stdout
    for name in ("resnet50_v1 ", "resnet50_v1b", "resnet50_v1c", "resnet50_v1d"):
        assert name in out
    assert "3.8 G" in out and "4.3 G" in out
    bad = subprocess.run([sys.executable, tool, "resnet51"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert_one_line_error(bad.stderr, "resnet50_v1d")
