"""Mixup (paper §5.4): train on convex combinations of pairs of examples and of their targets.

x = lam x_i + (1 - lam) x_j,  y = lam y_i + (1 - lam) y_j,  lam ~ Beta(alpha, alpha),
one lam per batch, and only the mixed examples are used. Neither MXNet nor GluonCV's
package ships a mixup function (GluonCV's lives in its training script), hence this one.
"""
import mxnet as mx
import numpy as np

PAIRINGS = ("reverse", "shuffle")


def sample_lambda(alpha, rng):
    """One mixing coefficient lam ~ Beta(alpha, alpha) (float in [0, 1]) from the numpy
    Generator ``rng``; the paper uses alpha = 0.2, which puts most mass near 0 and 1."""
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be > 0, got {alpha}; leave mixup off instead")
    return float(rng.beta(alpha, alpha))


def partner_indices(batch_size, pairing="reverse", rng=None):
    """Index j(i) of the example each example i is mixed with; int64 array (batch_size,).

    "reverse": j = N - 1 - i, GluonCV's ``X[::-1]`` (deterministic; with an odd N the middle
    example is mixed with itself, i.e. left as is). "shuffle": a random permutation
    drawn from ``rng`` (a numpy Generator), as in the mixup paper.
    """
    if pairing == "reverse":
        return np.arange(batch_size - 1, -1, -1, dtype=np.int64)
    if pairing == "shuffle":
        if rng is None:
            raise ValueError("mixup pairing 'shuffle' needs a numpy Generator (rng=...)")
        return rng.permutation(batch_size).astype(np.int64)
    raise ValueError(f"mixup pairing {pairing!r} is unknown; use one of {PAIRINGS}")


def mixup(data, targets, lam, pairing="reverse", rng=None):
    """Mix a batch with a permutation of itself.

    data : (N, ...) NDArray of inputs (e.g. (N, 3, H, W) float32 pixels).
    targets : (N, K) float32 NDArray of target distributions (one-hot or smoothed).
    lam : mixing coefficient in [0, 1] (see :func:`sample_lambda`).
    pairing, rng : see :func:`partner_indices`.
    Returns (mixed data, mixed targets) with the shapes and dtypes of the inputs; the
    target rows still sum to 1.
    """
    index = mx.nd.array(partner_indices(data.shape[0], pairing, rng), ctx=data.context,
                        dtype="int64")
    mixed_data = lam * data + (1 - lam) * mx.nd.take(data, index, axis=0)
    mixed_targets = lam * targets + (1 - lam) * mx.nd.take(targets, index.as_in_context(
        targets.context), axis=0)
    return mixed_data, mixed_targets
