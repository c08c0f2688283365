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
