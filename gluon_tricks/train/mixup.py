"""Batch mixing behind one interface: mixup (paper §5.4).

A *mixer* draws one batch's mixing from the numpy Generator of the epoch: ``sample(rng)``
returns a callable ``mix(x, y) -> (x, y)`` that the step applies to each device's share of
the batch (x: (N, 3, H, W) float32 NDArray, y: (N, K) float32 targets), or None for no
mixing. Example i is paired with example N - 1 - i (GluonCV's ``X[::-1]``; with an odd N
the middle example is paired with itself, i.e. left as is), and only mixed examples are
used. Neither MXNet nor GluonCV's package ships this (GluonCV's mixup lives in its training
script), hence this module.

- mixup: x = lam x_i + (1 - lam) x_j, y = lam y_i + (1 - lam) y_j, lam ~ Beta(alpha, alpha).
"""
from functools import partial

import mxnet as mx


def sample_lambda(alpha, rng):
    """One mixing coefficient lam ~ Beta(alpha, alpha) (float in [0, 1]) from the numpy
    Generator ``rng``; the paper's mixup uses alpha = 0.2, which puts most mass near 0 and
    1."""
    if alpha <= 0:
        raise ValueError(f"a mixing alpha must be > 0, got {alpha}; leave the mixing off "
                         "instead")
    return float(rng.beta(alpha, alpha))


def mixup(data, targets, lam):
    """Mix a batch with itself reversed.

    data : (N, ...) NDArray of inputs (e.g. (N, 3, H, W) float32 pixels).
    targets : (N, K) float32 NDArray of target distributions (one-hot or smoothed).
    lam : mixing coefficient in [0, 1] (see :func:`sample_lambda`).
    Returns (mixed data, mixed targets) with the shapes and dtypes of the inputs; the
    target rows still sum to 1.
    """
    mixed_data = lam * data + (1 - lam) * mx.nd.reverse(data, axis=0)
    mixed_targets = lam * targets + (1 - lam) * mx.nd.reverse(targets, axis=0)
    return mixed_data, mixed_targets


class Mixup:
    """The mixer of mixup (§5.4): one lam ~ Beta(alpha, alpha) per batch, one draw of
    ``rng``."""

    def __init__(self, alpha):
        self.alpha = alpha

    def sample(self, rng):
        """The batch's mix: :func:`mixup` with a fresh lam."""
        return partial(mixup, lam=sample_lambda(self.alpha, rng))



def mixer_of(cfg):
    """The batch mixer of the recipe key ``mixup_alpha`` (0 = off), or None."""
    return Mixup(cfg.mixup_alpha) if cfg.mixup_alpha > 0 else None
