"""The real command line (``gluon_tricks.cli.train.main``) in one Horovod rank, for
tests/run/test_horovod.py:

- ``{rank}`` in an argument becomes this rank's number (ranks given separate run folders,
  as on machines that share no file system);
- with GT_TEST_DUMP=DIR every rank saves the network it is about to validate to
  DIR/rank{r}-epoch{e}.params, so the test can compare the ranks.
"""
import os
import sys

from gluon_tricks.cli import train as cli
from gluon_tricks.train import loop


def main():
    rank = os.environ["HOROVOD_RANK"]
    argv = [arg.replace("{rank}", rank) for arg in sys.argv[1:]]
    dump = os.environ.get("GT_TEST_DUMP")
    if dump:
        evaluate, epochs = loop.evaluate, []

        def evaluate_after_dump(net, loader, contexts, dtype, dist):
            epochs.append(len(epochs) + 1)  # the job is not resumed: one call per epoch
            net.save_parameters(os.path.join(dump, f"rank{dist.rank}-epoch{epochs[-1]}.params"))
            return evaluate(net, loader, contexts, dtype, dist)

        loop.evaluate = evaluate_after_dump
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
