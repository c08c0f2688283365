"""What the classification trainer measures: top-k hits, the running sums of a training
epoch (on the device, so that adding them costs no host synchronisation) and the exact
top-1/top-5 over a validation set, summed over ranks."""
import mxnet as mx
import numpy as np

from ..data.shards import device_batches, device_shares


def topk_correct(logits, label, ks=(1, 5)):
    """Counts of samples whose label is among the top-k logits, for each k (numpy ints)."""
    k_max = min(max(ks), logits.shape[1])
    top = mx.nd.topk(logits.astype("float32"), k=k_max, axis=1).asnumpy()
    hit = top == label.asnumpy().reshape(-1, 1)
    return [int(hit[:, :min(k, k_max)].any(axis=1).sum()) for k in ks]


class EpochSums:
    """Running sums of one training epoch: loss and top-1 hits stay on the device (adding
    them costs no host synchronisation), samples are counted on the host. ``mixing``: the
    epoch trains under mixup, so top-1 hits mean nothing (§5.4) and are not counted.
    ``lr`` (last learning rate), ``seconds`` (training time) and ``skipped`` (updates
    skipped for FP16 overflow) are set by the loop."""

    def __init__(self, ctx, mixing):
        self.ctx, self.mixing = ctx, mixing
        self.loss = mx.nd.zeros((1,), ctx=ctx)
        self.correct = mx.nd.zeros((1,), ctx=ctx)
        self.samples = 0
        self.lr = self.seconds = None
        self.skipped = 0

    def add(self, loss, outputs, labels):
        """loss: (1,) batch loss sum; outputs: per-device logits of the batch; labels: the
        (N_d,) class indices of each, on its device."""
        self.loss = self.loss + loss
        for z, y in zip(outputs, labels):
            if not self.mixing:
                hits = (mx.nd.argmax(z.astype("float32"), axis=1) == y).sum()
                self.correct = self.correct + hits.as_in_context(self.ctx)
            self.samples += z.shape[0]

    def mean_loss(self):
        """This rank's mean loss so far (one host synchronisation)."""
        return self.loss.asscalar() / max(self.samples, 1)

    def reduce(self, dist):
        """(mean loss, top-1 accuracy or None under mixup, samples) over every rank (one
        host synchronisation)."""
        loss, correct = mx.nd.concat(self.loss, self.correct, dim=0).asnumpy()
        loss, samples, correct = dist.allreduce_sum([loss, self.samples, correct])
        return loss / samples, None if self.mixing else correct / samples, int(samples)


def topk_hits(logits, label, ks=(1, 5)):
    """(len(ks),) float32 NDArray on the logits' device: how many of the (N, C) ``logits``' rows
    have their (N,) ``label`` among their top-k, for each k; no host synchronisation."""
    k_max = min(max(ks), logits.shape[1])
    top = mx.nd.topk(logits.astype("float32", copy=False), k=k_max, axis=1)  # float indices
    hit = mx.nd.broadcast_equal(top, label.reshape((-1, 1)).astype("float32", copy=False))
    return mx.nd.concat(*[hit.slice_axis(axis=1, begin=0, end=min(k, k_max)).sum().reshape(1)
                          for k in ks], dim=0)


def evaluate(net, loader, contexts, dtype, dist):
    """Exact top-1/top-5 over the whole validation set (counts summed over ranks).

    Each device takes its share of every batch (data.shards.device_batches: copied, cast and,
    for a short last batch, padded on the device, so that the network always sees one input
    shape), and counts its top-k hits there; the host waits once, at the end."""
    shares = device_shares(loader.batch_size, len(contexts))
    hits = [mx.nd.zeros((2,), ctx=c) for c in contexts]
    images = 0
    for xs, ys, n in device_batches(loader, 0, contexts, dtype):  # no randomness: any epoch
        real = [min(stop, n) - start for start, stop in shares]
        logits = [net(x) if r > 0 else None for x, r in zip(xs, real)]  # every device first
        for k, (z, y, r) in enumerate(zip(logits, ys, real)):
            if r > 0:
                hits[k] = hits[k] + topk_hits(z[:r], y[:r])
        images += n
    c1, c5 = sum(h.asnumpy().astype(np.float64) for h in hits)
    c1, c5, n = dist.allreduce_sum([c1, c5, images])
    return c1 / max(n, 1), c5 / max(n, 1), int(n)
