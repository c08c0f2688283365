"""Mixup (paper §5.4): train on convex combinations of pairs of examples and of their targets.

x = lam x_i + (1 - lam) x_j,  y = lam y_i + (1 - lam) y_j,  lam ~ Beta(alpha, alpha),
one lam per batch, and only the mixed examples are used. Neither MXNet nor GluonCV's
package ships a mixup function (GluonCV's lives in its training script), hence this one.
"""
import mxnet as mx

def sample_lambda(alpha, rng):
    """One mixing coefficient lam ~ Beta(alpha, alpha) (float in [0, 1]) from the numpy
    Generator ``rng``; the paper uses alpha = 0.2, which puts most mass near 0 and 1."""
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be > 0, got {alpha}; leave mixup off instead")
    return float(rng.beta(alpha, alpha))


def mixup(data, targets, lam):
    """Mix a batch with itself reversed: example i with example N - 1 - i, GluonCV's
    ``X[::-1]`` (with an odd N the middle example is mixed with itself, i.e. left as is).

    data : (N, ...) NDArray of inputs (e.g. (N, 3, H, W) float32 pixels).
    targets : (N, K) float32 NDArray of target distributions (one-hot or smoothed).
    lam : mixing coefficient in [0, 1] (see :func:`sample_lambda`).
    Returns (mixed data, mixed targets) with the shapes and dtypes of the inputs; the
    target rows still sum to 1.
    """
    mixed_data = lam * data + (1 - lam) * mx.nd.reverse(data, axis=0)
    mixed_targets = lam * targets + (1 - lam) * mx.nd.reverse(targets, axis=0)
    return mixed_data, mixed_targets
