"""Condense GluonCV's published ImageNet training logs into gluon_tricks/published_runs.json.

    python tools/condense_published_logs.py FOLDER
    python tools/condense_published_logs.py FOLDER --out /tmp/published_runs.json

FOLDER holds, for each run NAME, NAME.log (the log or the parts of it that were read) and
NAME.sh (the command line kept next to it), as read from dmlc/web-data under
gluoncv/logs/classification/imagenet/, and a sources.json that says where each came from:

    {"resnet50_v1d-mixup": {"log_path": "gluoncv/logs/.../resnet50_v1d-mixup.log",
                            "log_commit": "<40 hex>", "log_chars": 429087,
                            "read_ranges": [[0, 429087]],
                            "sh_path": "gluoncv/logs/.../resnet50_v1d-mixup.sh",
                            "sh_commit": "<40 hex>"}, ...}

An entry may add "validity": "<reason>" to flag a curve whose validation lines are not a
measurement; without it gluon_tricks.published.curve_defect decides (it flags
resnet152_v1d.log, whose validation lines are a placeholder). A flagged run keeps its lr and
Namespace, and no table or figure shows its curve as the authors'.

Every log of the committed data file was read whole: read_ranges is one range, the whole
file. To rebuild it from a git copy of dmlc/web-data, write each file at the commit the data
file records (``git show COMMIT:PATH > FOLDER/NAME.log``) and list it in sources.json.

The parsing is gluon_tricks.published's; this prints one line per run.
"""
import argparse
import json
import os
import sys

from gluon_tricks import published
from gluon_tricks.errors import UserError, run_cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="folder of NAME.log, NAME.sh and sources.json")
    p.add_argument("--out", default=published.DATA_FILE,
                   help="the data file to write (default: the package's)")
    args = p.parse_args(argv)
    sources_file = os.path.join(args.folder, "sources.json")
    try:
        with open(sources_file, encoding="utf-8") as f:
            sources = json.load(f)
    except OSError as e:
        raise UserError(f"{sources_file}: {e.strerror}; FOLDER needs a sources.json (see "
                        "--help)") from None
    except ValueError as e:
        raise UserError(f"{sources_file}: not JSON ({e})") from None
    runs = published.read_folder(args.folder, sources)
    published.write(runs, args.out)
    for r in runs:
        final = r.final
        if final:
            top1 = f"{final.top1:.2f}% after epoch {final.epoch}"
        else:
            top1 = "no validation" if r.curve_measured else f"validation flagged: {r.validity}"
        part = "whole log" if r.complete else f"{len(r.read_ranges)} parts of the log"
        print(f"{r.name}: {len(r.lr)} lr points, {len(r.epochs)} epochs, {top1} ({part})")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
