"""The one way every random stream of a run is seeded: from (user seed, epoch, shard,
stream), so that a run resumed at epoch e draws exactly what it would have drawn, and the
streams (shuffle, augmentation, mixup) are independent of each other."""
import numpy as np

SHUFFLE, AUGMENT, MIXUP = 1, 2, 3


def derived_seed(seed, epoch, part_index, stream, pass_index=0):
    """A 31-bit seed (int) for one random stream of one epoch of one shard."""
    state = np.random.SeedSequence([seed, epoch, part_index, stream, pass_index]
                                   ).generate_state(1)[0]
    return int(state % (2 ** 31 - 1))
