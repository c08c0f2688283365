"""The report tools as users run them: a wrong argument ends in one line on stderr, exit 2,
no traceback."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.parametrize("argv", [
    ["tools/results_table.py", "no/such/run"],
    ["tools/plot_curves.py", "no/such/run"],
    ["tools/plot_lr.py", "--recipe", "no/such/run/recipe.yaml"],
    ["tools/export_gluoncv.py", "no/such/run", "out.params", "--model", "resnet50_v1d"],
])
def test_script_error_is_one_line(argv, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    argv = [sys.executable, os.path.join(ROOT, argv[0]), *argv[1:]]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: no/such/run") and done.stderr.count("\n") == 1, \
        done.stderr
    assert not os.listdir(tmp_path)
