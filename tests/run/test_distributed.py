"""Which device a process trains on, decided without a GPU (MXNet's count of visible GPUs
is an argument)."""
import pytest


def test_each_rank_finds_its_gpu():
    """One visible GPU per rank (SLURM's CUDA_VISIBLE_DEVICES): that one, whatever --gpus
    lists; all of a host's GPUs visible: gpus[local_rank]; ids MXNet does not see, or too
    few for the ranks of a host, are one-line errors."""
    from gluon_tricks.errors import RunError
    from gluon_tricks.run.parallel import rank_gpu

    assert rank_gpu([0], local_rank=5, local_size=8, visible=1) == 0
    assert rank_gpu(list(range(8)), local_rank=5, local_size=8, visible=1) == 0
    assert rank_gpu([7, 6, 5, 4, 3, 2, 1, 0], local_rank=2, local_size=8, visible=8) == 5
    for gpus, visible, words in (([0, 1], 8, r"2 GPU\(s\) for 8 ranks"), ([0], 0, "no GPU"),
                                 (list(range(8)), 4, "MXNet sees 4")):
        with pytest.raises(RunError, match=words):
            rank_gpu(gpus, local_rank=5, local_size=8, visible=visible)
