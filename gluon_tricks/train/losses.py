"""Targets and losses of the paper's refinements: label smoothing (§5.2) and knowledge
distillation (§5.3), as dense-target cross entropies so that mixup (§5.4) can mix targets.

All functions take and return ``mx.nd.NDArray``; losses are computed in float32 whatever
the logits' dtype (why, and how they relate to Gluon's and GluonCV's: docs/tricks.md).
"""
import mxnet as mx

SMOOTHING_MODES = ("paper", "gluoncv")


def smooth_labels(labels, num_classes, eps, mode="paper"):
    """Label-smoothed (or, for eps = 0, one-hot) targets.

    labels : (N,) NDArray of class indices (any numeric dtype; float indices are truncated).
    num_classes : K.
    eps : smoothing epsilon in [0, 1) (the paper: 0.1).
    mode : "paper": 1 - eps on the true class and eps / (K - 1) on each other class
        (paper §5.2). "gluoncv": GluonCV's ``--label-smoothing``, eps spread over
        all K classes: 1 - eps + eps / K on the true class, eps / K elsewhere.
    Returns (N, K) float32 NDArray on the labels' context; every row sums to 1. No
    gradient flows to it (targets are constants).
    """
    if mode == "paper":
        on, off = 1 - eps, eps / (num_classes - 1)
    elif mode == "gluoncv":
        on, off = 1 - eps + eps / num_classes, eps / num_classes
    else:
        raise ValueError(f"label smoothing mode {mode!r} is unknown; use one of {SMOOTHING_MODES}")
    return mx.nd.one_hot(labels, depth=num_classes, on_value=on, off_value=off, dtype="float32")


def soft_cross_entropy(logits, target_probs):
    """Per-sample cross entropy -sum_k q_k log softmax(z)_k.

    logits : (N, K) NDArray z, float16 or float32 (cast to float32 before the softmax).
    target_probs : (N, K) NDArray q, rows summing to 1.
    Returns (N,) float32 NDArray, differentiable in ``logits`` (log_softmax is the stable
    form: no exp of a large logit).
    """
    log_p = mx.nd.log_softmax(logits.astype("float32", copy=False), axis=-1)
    return -(target_probs.astype("float32", copy=False) * log_p).sum(axis=-1)


def distillation_loss(student_logits, teacher_logits, target_probs, temperature,
                      hard_weight=None):
    """Knowledge distillation loss of the paper's Eq. 6, per sample:

        CE(p, softmax(z)) + T^2 CE(softmax(r / T), softmax(z / T))

    or, with ``hard_weight`` w, GluonCV's ``DistillationSoftmaxCrossEntropyLoss``:
    w CE(p, softmax(z)) + (1 - w) T^2 CE(softmax(r / T), softmax(z / T)).

    student_logits : (N, K) NDArray z (float16/float32); the only input that gets a gradient.
    teacher_logits : (N, K) NDArray r; gradient is blocked (the teacher is fixed).
    target_probs : (N, K) NDArray p (one-hot, smoothed and/or mixed labels).
    temperature : T (the paper: 20).
    Returns (N,) float32 NDArray.
    """
    teacher_probs = mx.nd.softmax(
        mx.nd.stop_gradient(teacher_logits).astype("float32", copy=False) / temperature, axis=-1)
    hard = soft_cross_entropy(student_logits, target_probs)
    soft = soft_cross_entropy(student_logits.astype("float32", copy=False) / temperature,
                              teacher_probs)
    if hard_weight is None:
        return hard + temperature ** 2 * soft
    return hard_weight * hard + (1 - hard_weight) * temperature ** 2 * soft
