"""The paper's Figure 4: how far the largest logit stands above the others, with and without
label smoothing (§5.2).

The gap of one image is, as in the paper's Fig. 4 ("the gap between the maximum prediction
and the average of the rest"), computed on the logits z (the network's output before the
softmax, shape (K,))::

    gap = max_k z_k - (sum_k z_k - max_k z_k) / (K - 1)

i.e. the largest logit minus the mean of the other K - 1. It does not use the label: for an
image the network classifies correctly it is z_y minus the mean of the rest, the quantity
whose optimum label smoothing fixes. With paper-style targets (1 - eps on the true class,
eps / (K - 1) on each other) the cross entropy is minimised when z_y - z_i = log((K - 1)
(1 - eps) / eps) for every i != y (:func:`gluon_tricks.paper.optimal_logit_gap`; 9.1 for
K = 1000, eps = 0.1); with one-hot targets the optimum is +infinity.
"""
import mxnet as mx
import numpy as np

from .. import data as gt_data
from ..infer.checkpoint import load_net
from ..markdown import markdown_table
from ..paper import optimal_logit_gap


def logit_gaps(logits):
    """Per-row gap between the largest logit and the mean of the others.

    logits : (N, K) array-like of floats, K >= 2.
    Returns (N,) float64 numpy array: max_k z_k - (sum_k z_k - max_k z_k) / (K - 1).
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must be (N, K) with K >= 2, got shape {z.shape}")
    top = z.max(axis=1)
    return top - (z.sum(axis=1) - top) / (z.shape[1] - 1)


def optimum(num_classes, eps, mode="paper"):
    """The gap z_y - z_i at which the cross entropy with smoothed targets is smallest, or
    None for one-hot targets (eps = 0: the optimum is unbounded).

    mode "paper": targets 1 - eps / eps/(K-1), log((K-1)(1-eps)/eps) (paper §5.2).
    mode "gluoncv": targets 1 - eps + eps/K / eps/K (GluonCV's), log(1 + K(1-eps)/eps); the
    paper's formula does not apply to those targets, hence the second branch.
    """
    if not eps:
        return None
    if mode == "gluoncv":
        return float(np.log1p(num_classes * (1 - eps) / eps))
    return optimal_logit_gap(num_classes, eps)


def checkpoint_optimum(ckpt):
    """The optimal gap of the label smoothing ``ckpt`` was trained with (None: one-hot)."""
    return optimum(ckpt.classes, ckpt.eps, ckpt.mode)


def val_logits(ckpt, rec_val, batch_size=100, ctx=None):
    """Logits of every image of ``rec_val`` through the validation pipeline of ``ckpt``.

    Returns (logits (N, K) float32 numpy, labels (N,) int64 numpy), N = records of the file.
    Inference mode (BatchNorm running statistics), no augmentation.
    """
    ctx = ctx or mx.cpu()
    loader = gt_data.make_loader(ckpt.data, rec_val, batch_size, train=False)
    gt_data.check_labels(rec_val, ckpt.classes)
    net = load_net(ckpt, ctx)
    logits, targets = [], []
    for data, label in loader.epoch(0):
        logits.append(net(data.as_in_context(ctx)).astype("float32").asnumpy())
        targets.append(label.asnumpy().astype(np.int64))
    return np.concatenate(logits), np.concatenate(targets)


def gap_stats(gaps):
    """{'mean', 'median', 'std'} of a 1-D array of gaps (std with ddof 0), as floats."""
    gaps = np.asarray(gaps, dtype=np.float64)
    return dict(mean=float(gaps.mean()), median=float(np.median(gaps)),
                std=float(gaps.std()))


def plot_gaps(series, prefix, title="Gap between the largest logit and the rest (Fig. 4)"):
    """Figure 4: (a) the optimal gap against eps for the runs' numbers of classes (and
    ImageNet's 1000), each run's eps marked; (b) overlaid histograms of the gaps of each
    run, with its own optimum as a dashed line (runs with eps > 0).

    series : list of (Checkpoint, gaps (N,) numpy). Writes PREFIX.png and PREFIX.pdf;
    returns their paths.
    """
    import matplotlib.pyplot as plt

    from .figures import save_figure

    fig, (ax_eps, ax_hist) = plt.subplots(1, 2, figsize=(11, 4),
                                          gridspec_kw=dict(width_ratios=(2, 3)))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    eps_grid = np.linspace(0.01, 0.99, 197)
    # the curves in greys, so that a colour always means a run
    for k in sorted({c.classes for c, _ in series} | {1000}):
        ax_eps.plot(eps_grid, [optimum(k, e) for e in eps_grid], label=f"K = {k}",
                    color="0.55" if k == 1000 else "0.15",
                    linestyle="--" if k == 1000 else "-", linewidth=1.2)
    paper_gap = optimum(1000, 0.1)
    ax_eps.plot([0.1], [paper_gap], "x", color="0.55")
    ax_eps.annotate(f"ImageNet, ε = 0.1: {paper_gap:.1f}", (0.1, paper_gap),
                    textcoords="offset points", xytext=(8, 4), fontsize="small")
    for i, (ckpt, _) in enumerate(series):
        if checkpoint_optimum(ckpt) is not None:
            ax_eps.plot([ckpt.eps], [checkpoint_optimum(ckpt)], "o", color=colors[i % len(colors)])
    ax_eps.set_xlabel("label smoothing ε")
    ax_eps.set_ylabel("optimal gap log((K−1)(1−ε)/ε)")
    ax_eps.set_title("(a) theoretical gap")
    ax_eps.grid(alpha=0.3)
    ax_eps.legend(fontsize="small")

    everything = np.concatenate([g for _, g in series])
    bins = np.linspace(min(0.0, everything.min()), everything.max(), 60)
    for i, (ckpt, gaps) in enumerate(series):
        color = colors[i % len(colors)]
        ax_hist.hist(gaps, bins=bins, density=True, alpha=0.45, color=color,
                     label=f"{ckpt.label} (ε = {ckpt.eps:g}): mean {gaps.mean():.2f}")
        if checkpoint_optimum(ckpt) is not None:
            ax_hist.axvline(checkpoint_optimum(ckpt), color=color, linestyle="--", linewidth=1.5,
                            label=f"optimum, K = {ckpt.classes}, ε = {ckpt.eps:g}: "
                                  f"{checkpoint_optimum(ckpt):.2f}")
    ax_hist.set_xlabel("max logit − mean of the other logits")
    ax_hist.set_ylabel("density")
    ax_hist.set_title("(b) empirical gap on the validation set")
    ax_hist.grid(alpha=0.3)
    ax_hist.legend(fontsize="x-small")
    fig.suptitle(title)
    paths = save_figure(fig, prefix)
    plt.close(fig)
    return paths


def table(rows):
    """Markdown table of ``rows`` = [dict(label, model, classes, eps, images, mean, median,
    std, optimum)] (optimum None for one-hot), str ending in a newline."""
    head = ("run", "model", "K", "ε", "images", "mean gap", "median", "std",
            "optimum log((K−1)(1−ε)/ε)")
    return markdown_table(head, [[
        r["label"], r["model"], r["classes"], f"{r['eps']:g}", r["images"],
        f"{r['mean']:.3f}", f"{r['median']:.3f}", f"{r['std']:.3f}",
        "∞ (one-hot)" if r["optimum"] is None else f"{r['optimum']:.3f}"] for r in rows])
