"""The training command line (``gluon_tricks.cli.train.main``) killed in the middle of an
update, for tests/train/test_accumulate.py: with GT_TEST_KILL_AT=N the process kills itself
with SIGKILL (no handler runs, nothing is cleaned up) as its Nth micro-batch is about to
start, and first prints how many micro-batches of the update its gradients already hold.
"""
import os
import signal
import sys

from gluon_tricks.cli import train as cli
from gluon_tricks.cli.common import set_up_process


def main():
    # as the command line does on CPU, before MXNet is imported (the step imports it)
    set_up_process(deterministic_cpu=True)
    from gluon_tricks.train.step import TrainStep
    kill_at, calls = int(os.environ["GT_TEST_KILL_AT"]), []
    real = TrainStep.__call__

    def dies_at_the_nth_micro_batch(step, *args):
        calls.append(step.pending)
        if len(calls) == kill_at:
            print(f"killed with {step.pending} micro-batch(es) of the update pending",
                  flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return real(step, *args)

    TrainStep.__call__ = dies_at_the_nth_micro_batch
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
