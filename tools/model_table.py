"""Paper Table 5's model columns, counted from our networks' own graphs.

    python tools/model_table.py                       # ResNet-50 V1/B/C/D at 224
    python tools/model_table.py resnet101_v1d inception_v3 --size 299
    python tools/model_table.py --table1              # the paper's Table 1, counted

--table1 counts the networks the paper's Table 1 cites on GluonCV's model zoo (built with
pretrained=False: nothing is downloaded) and its tricks row on our ResNet-50-D, beside the
paper's FLOPs and accuracies; gluon_tricks/paper.py records the counts (TABLE1_COUNTED).
"""
import argparse
import sys

from gluon_tricks.errors import UserError, run_cli
from gluon_tricks.markdown import markdown_header, markdown_row
from gluon_tricks.paper import PAPER, TABLE1

DEFAULT = ["resnet50_v1", "resnet50_v1b", "resnet50_v1c", "resnet50_v1d"]


def rows(names, size=None):
    """(name, size, params, MACs, paper Result or None) for each network."""
    from gluon_tricks.models import get_model, input_size
    from gluon_tricks.models.complexity import count
    for name in names:
        s = size or input_size(name)
        c = count(get_model(name), s)
        yield name, s, c.params, c.macs, PAPER.get(f"table5/{name}/efficient")


def table1_rows():
    """(paper key, params, MACs, paper Result) for each row of the paper's Table 1, at 224."""
    from gluoncv.model_zoo import get_model as zoo_model
    from gluon_tricks.models import get_model
    from gluon_tricks.models.complexity import count
    for key, paper in TABLE1.items():
        _, name, row = key.split("/")
        net = get_model(name) if row == "tricks" else zoo_model(name, pretrained=False)
        c = count(net, 224)
        yield key, c.params, c.macs, paper


def print_table1():
    print(markdown_header(("paper key", "params (M)", "mult-adds (G)", "paper FLOPs (G)",
                           "paper top-1", "paper top-5")))
    for key, params, macs, paper in table1_rows():
        print(markdown_row((key, f"{params / 1e6:.2f}", f"{macs / 1e9:.2f}", f"{paper.gflops}",
                            f"{paper.top1}", "-" if paper.top5 is None else f"{paper.top5}")))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=DEFAULT, help="model names (default: Table 5's)")
    p.add_argument("--size", type=int, help="input size in pixels (default: the network's own)")
    p.add_argument("--table1", action="store_true",
                   help="count the paper's Table 1 networks (GluonCV's zoo, pretrained=False)")
    args = p.parse_args(argv)
    if args.table1:
        print_table1()
        return 0
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
