"""An optimizer's state on disk, for both trainers' checkpoints.

MXNet's Trainer.save_states pickles the updater (and the optimizer object), and
load_states unpickles whatever the file holds: a checkpoint shared by someone else could
run code on --resume. The state is NDArrays (NAG's momentum; with multi_precision the
float32 master weights), so it is saved with mx.nd.save keyed by parameter name, and its
structure (which entries are arrays, tuples, None) and the update counts go to JSON.
"""


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
