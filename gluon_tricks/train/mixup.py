"""Batch mixing: mixup (paper §5.4) and CutMix (Yun et al. 2019; not in the paper), behind
one interface.

A *mixer* draws one batch's mixing from the numpy Generator of the epoch: ``sample(rng)``
returns a callable ``mix(x, y) -> (x, y)`` that the step applies to each device's share of
the batch (x: (N, 3, H, W) float32 NDArray, y: (N, K) float32 targets), or None for no
mixing. Both tricks pair example i with example N - 1 - i (GluonCV's ``X[::-1]``; with an
odd N the middle example is paired with itself, i.e. left as is), and only mixed examples
are used. Neither MXNet nor GluonCV's package ships these (GluonCV's mixup lives in its
training script), hence this module.

- mixup: x = lam x_i + (1 - lam) x_j, y = lam y_i + (1 - lam) y_j, lam ~ Beta(alpha, alpha).
- CutMix: a box of area (1 - lam) H W of x_i, lam ~ Beta(alpha, alpha), is replaced by the
  same box of x_j; the box's centre is uniform over the pixels and the box is clipped at
  the borders, so the label weight is recomputed from the clipped box's real area (as timm's
  ``cutmix_bbox_and_lam`` does): y = w y_i + (1 - w) y_j, w = 1 - area / (H W).
"""
import math
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


def cutmix_box(lam, centre, height, width):
    """CutMix's box in a ``height`` x ``width`` image and its label weight.

    lam : coefficient in [0, 1]; the unclipped box has sides int(height sqrt(1 - lam)) and
        int(width sqrt(1 - lam)), rounded down to even (timm's ``rand_bbox``).
    centre : (fy, fx) in [0, 1): the centre pixel (int(fy height), int(fx width)), so that
        uniform fractions give a centre uniform over the pixels.
    Returns ((top, bottom, left, right), weight): the rows top:bottom and columns
    left:right of the box clipped to the image (ints), and the weight of the image's own
    target, 1 - (clipped area) / (height width) (float).
    """
    ratio = math.sqrt(1 - lam)
    half_h, half_w = int(height * ratio) // 2, int(width * ratio) // 2
    # min(): a fraction just below 1 can round up to the full side in floating point
    cy = min(int(centre[0] * height), height - 1)
    cx = min(int(centre[1] * width), width - 1)
    top, bottom = max(cy - half_h, 0), min(cy + half_h, height)
    left, right = max(cx - half_w, 0), min(cx + half_w, width)
    return (top, bottom, left, right), 1 - (bottom - top) * (right - left) / (height * width)


def cutmix(data, targets, lam, centre):
    """Paste the box of :func:`cutmix_box` from the reversed batch into each image and mix
    the targets by the box's real area.

    data : (N, C, H, W) NDArray; targets : (N, K) float32 NDArray of target distributions.
    lam, centre : as in :func:`cutmix_box`.
    Returns (mixed data, mixed targets) with the shapes and dtypes of the inputs.
    """
    (top, bottom, left, right), weight = cutmix_box(lam, centre, *data.shape[-2:])
    mixed_data = data.copy()
    if bottom > top and right > left:  # MXNet cannot slice an empty box
        box = (slice(None), slice(None), slice(top, bottom), slice(left, right))
        mixed_data[box] = mx.nd.reverse(data, axis=0)[box]
    mixed_targets = weight * targets + (1 - weight) * mx.nd.reverse(targets, axis=0)
    return mixed_data, mixed_targets


class Mixup:
    """The mixer of mixup (§5.4): one lam ~ Beta(alpha, alpha) per batch, one draw of
    ``rng``."""

    def __init__(self, alpha):
        self.alpha = alpha

    def sample(self, rng):
        """The batch's mix: :func:`mixup` with a fresh lam."""
        return partial(mixup, lam=sample_lambda(self.alpha, rng))


class CutMix:
    """The mixer of CutMix: one lam ~ Beta(alpha, alpha) and one box centre per batch (the
    same box on every device), three draws of ``rng``."""

    def __init__(self, alpha):
        self.alpha = alpha

    def sample(self, rng):
        """The batch's mix: :func:`cutmix` with a fresh lam and centre."""
        lam = sample_lambda(self.alpha, rng)
        return partial(cutmix, lam=lam, centre=(float(rng.random()), float(rng.random())))


class Switch:
    """Mixup and CutMix on the same run: each batch uses one of them, CutMix with
    probability ``cutmix_prob`` (timm's ``switch_prob``)."""

    def __init__(self, mixup_mixer, cutmix_mixer, cutmix_prob):
        self.mixup, self.cutmix, self.cutmix_prob = mixup_mixer, cutmix_mixer, cutmix_prob

    def sample(self, rng):
        """The batch's mix: the choice is one draw of ``rng``, then the chosen mixer's."""
        chosen = self.cutmix if rng.random() < self.cutmix_prob else self.mixup
        return chosen.sample(rng)


def mixer_of(cfg):
    """The batch mixer of the recipe keys ``mixup_alpha``, ``cutmix_alpha`` (0 = off) and
    ``mix_switch_prob`` (with both on: the share of batches that use CutMix), or None."""
    mixers = [m(a) for m, a in ((Mixup, cfg.mixup_alpha), (CutMix, cfg.cutmix_alpha)) if a > 0]
    if len(mixers) == 2:
        return Switch(*mixers, cfg.mix_switch_prob)
    return mixers[0] if mixers else None
