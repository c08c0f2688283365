"""The optimiser of the paper (§2.1: NAG, momentum 0.9, weight decay 1e-4) and its "no bias
decay" trick (§3.1), on MXNet's own NAG.

MXNet 1.9.1's ``nag_mom_update`` / ``mp_nag_mom_update`` kernels (src/operator/
optimizer_op-inl.h; the Python docstring of ``mx.optimizer.NAG`` shows a different,
lr-free form) do, per element, with d = rescale_grad * g + wd * w::

    m1    = momentum * m
    w_new = w - m1 + (momentum + 1) * (m1 - lr * d)    # = w + momentum * m1 - (1 + momentum) lr d
    m_new = m1 - lr * (rescale_grad * g + wd * w_new)

so the state is a velocity with the learning rate inside it (Sutskever et al.), and the
weight decay term of the *stored* momentum uses the updated weight (the Trainer updates in
place; the multi-precision kernel does the same on its float32 copy). For a constant lr
and up to that O(lr^2 wd) term it equals the docstring's ``v = momentum v + d;
w -= lr (d + momentum v)``. The tests replay the kernel form in numpy.

With ``multi_precision=True`` and float16 weights the optimizer keeps a float32 master
copy (and float32 momentum) in its state and writes the float16 weight as the rounded
master copy: the paper's FP32 master weights (§3.2). The kernel exists on CPU.
"""
import mxnet as mx
from mxnet.gluon import nn

# Normalisation layers: their scale and shift (gamma, beta) get no decay.
_NORM_LAYERS = (nn.BatchNorm, nn.LayerNorm, nn.InstanceNorm, nn.GroupNorm)


def make_optimizer(lr, momentum=0.9, wd=1e-4, multi_precision=False):
    """MXNet's NAG (see the module docstring for its exact update).

    lr : initial learning rate (the loop sets it per batch from the schedule).
    momentum, wd : NAG momentum and L2 weight decay coefficient (added to the gradient).
    multi_precision : keep float32 master weights for float16 parameters (§3.2).
    """
    return mx.optimizer.NAG(learning_rate=lr, momentum=momentum, wd=wd,
                            multi_precision=multi_precision)


def _parameter_roles(block):
    """{parameter: (role, owning block)} for every parameter registered as an attribute of
    a block in the tree (role = attribute name: "weight", "bias", "gamma", "beta", ...)."""
    roles = {}
    stack = [block]
    while stack:
        b = stack.pop()
        for role, param in b._reg_params.items():
            roles[param] = (role, b)
        stack.extend(b._children.values())
    return roles


def set_no_bias_decay(net_or_params):
    """No bias decay (§3.1): weight decay only on convolution and dense weights.

    net_or_params : a gluon Block (decided by role: a parameter keeps decay only if it is
        the ``weight`` of a layer that is not a normalisation layer) or a ParameterDict /
        iterable of Parameters (decided by the name's last ``_`` field, "weight" keeps it).
        GluonCV matches ``.*beta|.*gamma|.*bias`` on full names instead, which would also
        catch a conv weight whose block prefix happens to contain "beta".
    Sets ``wd_mult = 0`` on the others that are trained (grad_req != "null"; BN running
    statistics are not updated by the optimiser anyway) and returns their names, sorted.
    MXNet's optimizer reads ``Parameter.wd_mult`` at every update, so this takes effect
    from the next update even on an existing Trainer.
    """
    if isinstance(net_or_params, mx.gluon.Block):
        roles = _parameter_roles(net_or_params)
        params = net_or_params.collect_params().values()
    else:
        params = (net_or_params.values() if hasattr(net_or_params, "values")
                  else list(net_or_params))
        roles = {}
    off = []
    for p in params:
        role, owner = roles.get(p, (p.name.rsplit("_", 1)[-1], None))
        decays = role == "weight" and not isinstance(owner, _NORM_LAYERS)
        if not decays and p.grad_req != "null":
            p.wd_mult = 0.0
            off.append(p.name)
    return sorted(off)


# ----------------------------------------------------------------------------- state on disk
# MXNet's Trainer.save_states pickles the updater (and the optimizer object), and
# load_states unpickles whatever the file holds: a checkpoint shared by someone else could
# run code on --resume. The state is NDArrays (NAG's momentum; with multi_precision the
# float32 master weights), so it is saved with mx.nd.save keyed by parameter name, and its
# structure (which entries are arrays, tuples, None) and the update counts go to JSON.

def _structural_names(trainer, net):
    """Names of the trainer's parameters as save_parameters writes them ("features.0.weight"):
    Gluon's own names carry a per-instance prefix ("resnetv1d3_...") that differs between
    processes and runs."""
    by_id = {id(p): name for name, p in net._collect_params_with_prefix().items()}
    return [by_id[id(p)] for p in trainer._params]


def optimizer_state(trainer, net):
    """(arrays, meta) of ``trainer``'s optimizer state for the parameters of ``net``: arrays
    {"<param>/<k>": NDArray} for mx.nd.save, meta a JSON-able dict (layout per parameter,
    update counts); parameters named as in ``net.save_parameters``."""
    updater = trainer._updaters[0]
    names = _structural_names(trainer, net)
    arrays, layout = {}, {}
    for index, state in updater.states.items():
        name = names[index]
        entries = state if isinstance(state, (tuple, list)) else [state]
        layout[name] = ["tuple" if isinstance(state, (tuple, list)) else "single"]
        for k, entry in enumerate(entries):
            if entry is None:
                layout[name].append(None)
            else:
                arrays[f"{name}/{k}"] = entry
                layout[name].append(str(entry.dtype))
    optimizer = updater.optimizer
    counts = {names[i]: n for i, n in optimizer._index_update_count.items() if i < len(names)}
    return arrays, dict(layout=layout, num_update=optimizer.num_update, update_counts=counts)


def restore_optimizer_state(trainer, net, arrays, meta):
    """Put the state of :func:`optimizer_state` back into ``trainer`` (every device's
    updater). Raises ValueError, naming the parameter, if it does not fit ``net``."""
    index_of = {name: i for i, name in enumerate(_structural_names(trainer, net))}
    states = {}
    for name, (kind, *entries) in meta["layout"].items():
        if name not in index_of:
            raise ValueError(f"optimizer state for '{name}', which the network does not have")
        values = []
        for k, dtype in enumerate(entries):
            if dtype is None:
                values.append(None)
                continue
            key = f"{name}/{k}"
            if key not in arrays:
                raise ValueError(f"optimizer state '{key}' is missing")
            weight = trainer._params[index_of[name]]
            if arrays[key].shape != weight.shape:
                raise ValueError(f"optimizer state '{key}' has shape {arrays[key].shape}, "
                                 f"the parameter {weight.shape}")
            values.append(arrays[key])
        states[index_of[name]] = tuple(values) if kind == "tuple" else values[0]
    for updater in trainer._updaters:
        # copies per device; each moves to its weights' device at its first update
        updater.states = {i: _copy(s) for i, s in states.items()}
        updater.states_synced = dict.fromkeys(states, False)
        optimizer = updater.optimizer
        optimizer.num_update = meta["num_update"]
        optimizer._index_update_count = {index_of[n]: c for n, c in
                                         meta["update_counts"].items() if n in index_of}


def _copy(state):
    if isinstance(state, tuple):
        return tuple(_copy(s) for s in state)
    return None if state is None else state.copy()
