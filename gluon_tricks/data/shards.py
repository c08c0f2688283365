"""Batches as one array pair per device, so that a step on several devices and validation
take them without a second ``split_and_load``.

``device_batches(loader, epoch, contexts)`` serves every backend: a loader with
``device_epoch`` (the DALI backend: one pipeline per device, its output already there) gives
its own; the others' host batches are cut into each device's share, copied to the device and
cast and padded there. The shares are MXNet's ``split_and_load(even_split=False)`` of the
loader's batch size (``device_shares``), whatever the size of the batch at hand, so every
device always sees one input shape.
"""
import mxnet as mx
import numpy as np


def device_shares(batch_size, num_devices):
    """The [start, stop) rows of a batch of ``batch_size`` that each of ``num_devices`` devices
    takes: MXNet 1.9.1's ``split_data`` rule, the first ``batch_size % num_devices`` devices
    one row more."""
    size, extra = divmod(batch_size, num_devices)
    stops = np.cumsum([size + (k < extra) for k in range(num_devices)]).tolist()
    return list(zip([0] + stops[:-1], stops))


def share_of(array, rows, n, ctx, dtype=None):
    """Rows ``rows`` = (start, stop) of ``array``'s first ``n`` rows, on ``ctx``, cast there to
    ``dtype`` (None: as it is) and padded there with zero rows to stop - start rows."""
    start, stop = rows
    real = max(0, min(stop, n) - start)
    parts = [array[start:start + real].as_in_context(ctx)] if real else []
    if real < stop - start:
        parts.append(mx.nd.zeros((stop - start - real,) + array.shape[1:], ctx=ctx,
                                 dtype=array.dtype))
    out = parts[0] if len(parts) == 1 else mx.nd.concat(*parts, dim=0)
    return out.astype(dtype, copy=False) if dtype else out


def split_batch(data, label, contexts, dtype=None):
    """(xs, ys): a host batch ``data`` (N, ...) and its ``label`` (N,) as each device of
    ``contexts``' share (device_shares of N) on that device, the data cast there to ``dtype``
    (None: as it is); what :func:`device_batches` yields for a host loader's batch."""
    shares = device_shares(data.shape[0], len(contexts))
    n = data.shape[0]
    return ([share_of(data, rows, n, ctx, dtype) for rows, ctx in zip(shares, contexts)],
            [share_of(label, rows, n, ctx) for rows, ctx in zip(shares, contexts)])


def device_batches(loader, epoch, contexts, dtype=None):
    """Iterator over the batches of ``loader``'s epoch ``epoch`` as ``(xs, ys, n)``: one data
    array (cast to ``dtype`` on its device; None: float32 as loaded) and one label array per
    device of ``contexts``, each the device's share of the batch (device_shares of
    ``loader.batch_size``) on that device; ``n``: the batch's real samples, the rows past it
    (a short last validation batch) zero padding at the end of the batch."""
    if hasattr(loader, "device_epoch"):
        for xs, ys, n in loader.device_epoch(epoch, contexts):
            yield [x.astype(dtype, copy=False) if dtype else x for x in xs], ys, n
        return
    shares = device_shares(loader.batch_size, len(contexts))
    for data, label in loader.epoch(epoch):
        n = data.shape[0]
        yield ([share_of(data, rows, n, ctx, dtype) for rows, ctx in zip(shares, contexts)],
               [share_of(label, rows, n, ctx) for rows, ctx in zip(shares, contexts)], n)
