"""Paper Table 5's model columns, counted from our networks' own graphs.

    python tools/model_table.py                       # ResNet-50 V1/B/C/D at 224
    python tools/model_table.py resnet101_v1d inception_v3 --size 299
"""
import argparse
import sys

from gluon_tricks.errors import UserError, run_cli
from gluon_tricks.markdown import markdown_header, markdown_row
from gluon_tricks.paper import PAPER

DEFAULT = ["resnet50_v1", "resnet50_v1b", "resnet50_v1c", "resnet50_v1d"]


def rows(names, size=None):
    """(name, size, params, MACs, paper Result or None) for each network."""
    from gluon_tricks.models import get_model, input_size
    from gluon_tricks.models.complexity import count
    for name in names:
        s = size or input_size(name)
        c = count(get_model(name), s)
        yield name, s, c.params, c.macs, PAPER.get(f"table5/{name}/efficient")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=DEFAULT, help="model names (default: Table 5's)")
    p.add_argument("--size", type=int, help="input size in pixels (default: the network's own)")
    args = p.parse_args(argv)
    # imported once the flags are read, as they bring MXNet (seconds): --help answers at once
    from gluon_tricks.models import MODEL_NAMES
    unknown = [m for m in args.models if m not in MODEL_NAMES]
    if unknown:
        raise UserError(f"unknown model {unknown[0]!r}; valid names: {', '.join(MODEL_NAMES)}")
    print(markdown_header(("model", "input", "params (M)", "paper", "mult-adds (G)", "paper",
                           "diff")))
    for name, size, params, macs, paper in rows(args.models, args.size):
        if paper is not None and size == 224:
            ref = (f"{paper.params_millions} M", f"{paper.gflops} G",
                   f"{100 * (macs / 1e9 / paper.gflops - 1):+.1f}%")
        else:
            ref = ("-", "-", "-")
        print(markdown_row((name, size, f"{params / 1e6:.2f}", ref[0], f"{macs / 1e9:.2f}", ref[1],
                            ref[2])))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
