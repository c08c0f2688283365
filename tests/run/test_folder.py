"""The run folder's configuration: config.yaml is checked on resume against the fingerprint
the run wrote, and the keys in which two configurations differ are named one way
everywhere (resume, hand edits, the report tools)."""
import os

import pytest

from gluon_tricks.run.folder import RunFolder, RunFolderError
from gluon_tricks.run.lifecycle import Launch, open_run
from gluon_tricks.run.recipe import config_diff
from gluon_tricks.train.config import RECIPES

from helpers import tiny_config


def test_a_run_folder_without_fingerprint_is_refused_in_one_line(tmp_path):
    out = str(tmp_path / "run")
    cfg = tiny_config()
    folder = RunFolder(out)
    os.makedirs(out)
    folder.write_config(cfg.to_dict())
    folder.check_config_untouched()  # as the run wrote it
    os.remove(os.path.join(out, "fingerprint.json"))
    with pytest.raises(RunFolderError) as refused:
        open_run(out, Launch(resume=True), cfg, RECIPES)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(os.path.join(out, "fingerprint.json") + ": missing")
    assert "--out" in message


def test_config_diff_names_nested_keys_with_both_values():
    old = {"model": "resnet50_v1d", "epochs": 120, "data": {"input_size": 224, "mean": [1, 2]},
           "teacher": None}
    new = {"model": "resnet50_v1d", "epochs": 200, "data": {"input_size": 224, "mean": [1, 3]},
           "seed": 1}
    assert config_diff(old, new) == {"data.mean": [[1, 2], [1, 3]], "epochs": [120, 200],
                                     "seed": [None, 1]}
    assert list(config_diff(old, new)) == ["data.mean", "epochs", "seed"]  # sorted
    assert config_diff(new, new) == {}
