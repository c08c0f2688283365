"""The process set-up of the command lines (gluon_tricks/cli/common.py set_up_process): what a
CPU run gets, and that the user's variables win."""
import os
import subprocess
import sys

PROBE = ("import os, sys; from gluon_tricks.cli.common import set_up_process; "
         "set_up_process(deterministic_cpu=sys.argv[1] == 'cpu'); "
         "print(os.environ.get('MXNET_ENGINE_TYPE'), os.environ.get('OMP_WAIT_POLICY'))")


def probe(kind, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("MXNET_ENGINE_TYPE", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", PROBE, kind], env=dict(base, **env),
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def test_cpu_runs_get_the_naive_engine_with_sleeping_openmp_threads():
    """Bit-exact runs need the naive engine (docs/notes.md §4); its speed needs OpenMP's
    idle threads to sleep."""
    assert probe("cpu") == ["NaiveEngine", "PASSIVE"]


def test_gpu_runs_keep_mxnet_defaults():
    assert probe("gpu") == ["None", "None"]


def test_the_users_variables_win():
    assert probe("cpu", MXNET_ENGINE_TYPE="ThreadedEnginePerDevice",
                 OMP_WAIT_POLICY="ACTIVE") == ["ThreadedEnginePerDevice", "ACTIVE"]
