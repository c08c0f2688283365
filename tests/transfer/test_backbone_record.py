"""The backbone record a transfer run logs when it starts (what the results table's
"backbone top-1" column shows, beside the paper's Tables 8 and 9 Top-1): the validation
top-1 that the backbone's own run wrote beside the weights (best.json beside best.params,
a checkpoint's epoch-NNNN.json), on files written by hand with known numbers."""
import json
import os

import pytest

from gluon_tricks.transfer.loop import backbone_record


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def test_a_run_folders_best_weights_carry_their_best_json(tmp_path):
    params = _write(tmp_path / "r50d" / "best.params", "weights")
    _write(tmp_path / "r50d" / "best.json", json.dumps(dict(
        epoch=118, val_top1=0.7916, val_top5=0.9459, best_epoch=118, optimizer={})))
    assert backbone_record(params) == dict(type="backbone", params=params, val_top1=0.7916,
                                           val_top5=0.9459, backbone_epoch=118)


def test_a_checkpoint_carries_its_epochs_record(tmp_path):
    folder = tmp_path / "r50d" / "checkpoints"
    params = _write(folder / "epoch-0090.params", "weights")
    _write(folder / "epoch-0090.json", json.dumps(dict(epoch=90, val_top1=0.75, val_top5=0.92)))
    _write(tmp_path / "r50d" / "best.json", json.dumps(dict(epoch=120, val_top1=0.77)))
    record = backbone_record(params)
    assert (record["val_top1"], record["backbone_epoch"]) == (0.75, 90)


@pytest.mark.parametrize("beside", [None, "not json {", json.dumps([0.79]),
                                    json.dumps(dict(epoch=3, val_top1=None)),
                                    json.dumps(dict(epoch=3, val_top1="79.16"))])
def test_weights_without_a_record_of_their_run_have_no_top1(tmp_path, beside):
    """GluonCV's .params (nothing beside it), or a .json beside that is not a run's record:
    the top-1 is unknown, never guessed."""
    params = _write(tmp_path / "resnet50_v1d-117a384e.params", "weights")
    if beside is not None:
        _write(tmp_path / "resnet50_v1d-117a384e.json", beside)
    assert backbone_record(params) == dict(type="backbone", params=params, val_top1=None,
                                           val_top5=None, backbone_epoch=None)
