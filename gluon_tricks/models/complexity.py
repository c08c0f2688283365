"""Parameter and multiply-add counts read off a network's own symbolic graph (paper Table 5)."""
import json
from dataclasses import dataclass

import mxnet as mx
import numpy as np


@dataclass(frozen=True)
class Complexity:
    params: int  # learnable parameters (BatchNorm running statistics excluded)
    macs: int  # multiply-adds of Convolution and FullyConnected nodes, for one image


def count(net, input_size=224):
    """Count parameters and multiply-adds of ``net`` for one 3 x input_size x input_size image.

    Shape inference over the symbol the network builds: each Convolution costs
    H_out * W_out * C_out * (C_in / groups) * k_h * k_w multiply-adds, each
    FullyConnected C_in * C_out; BatchNorm, activations, pooling and biases are not
    counted, as in the paper's (and the original ResNet paper's) FLOPs column.
    """
    sym = net(mx.sym.var("data"))
    internals = sym.get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape(data=(1, 3, input_size, input_size))
    outputs = dict(zip(internals.list_outputs(), out_shapes))
    args = dict(zip(internals.list_arguments(), arg_shapes))
    params = sum(int(np.prod(s)) for name, s in args.items() if name != "data")

    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    macs = 0
    for node in nodes:
        if node["op"] not in ("Convolution", "FullyConnected"):
            continue
        weight = args[nodes[node["inputs"][1][0]]["name"]]
        out = outputs[node["name"] + "_output"]
        if node["op"] == "Convolution":
            macs += int(np.prod(out[1:])) * int(np.prod(weight[1:]))
        else:
            macs += int(np.prod(weight))
    return Complexity(params=params, macs=macs)
