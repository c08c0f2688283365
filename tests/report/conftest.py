"""Helpers for the report tests: load a tools/ script as a module, write run folders by hand."""
import importlib.util
import json
import os

import pytest
import yaml

from helpers import train_run

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, "tools")


def load_tool(name):
    """tools/NAME.py as a module (tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(path, config, epochs, extra_lines=()):
    """A run folder as the trainer leaves it: config.yaml and log.jsonl whose epoch records
    are built from ``epochs`` = [(val_top1, val_top5, samples_per_sec), ...] (fractions),
    with an interval record before each epoch record."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    best = -1.0
    with open(os.path.join(path, "log.jsonl"), "w") as f:
        for epoch, (top1, top5, speed) in enumerate(epochs, start=1):
            best = max(best, top1)
            f.write(json.dumps(dict(type="interval", epoch=epoch, batch=1, lr=0.1,
                                    loss=2.0, samples_per_sec=speed)) + "\n")
            f.write(json.dumps(dict(type="epoch", epoch=epoch, lr=0.1, train_loss=1.5,
                                    train_top1=None, val_top1=top1, val_top5=top5,
                                    val_images=100, samples_per_sec=speed, time_s=3.0,
                                    loss_scale=None, best_top1=best)) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return str(path)


@pytest.fixture
def tool():
    return load_tool


@pytest.fixture
def make_run():
    return write_run


@pytest.fixture(scope="session")
def trainer():
    """:func:`train_run`: a real trained run folder."""
    return train_run
