"""tools/ablate.py: the ladder's recipes are the paper's Table 6 steps, the plan and the
resume rules, the table's numbers on hand-made run folders, and ``--quick`` for real on the
digits demo set."""
import os
import re

import numpy as np
import pytest

from gluon_tricks.report import ablation
from gluon_tricks.errors import run_cli
from gluon_tricks.train.config import TrainConfig

from helpers import assert_one_line_error

# What each row adds to the one above, from the paper's §5 (not read from the recipes).
LADDER_STEPS = {
    "cosine": dict(lr_mode="cosine"),
    "label_smoothing": dict(label_smoothing=0.1),
    "mixup": dict(mixup_alpha=0.2),
    "distill_mixup": dict(distill=True, teacher_model="resnet34_v1d", temperature=20.0,
                          teacher_recipe="ablation/teacher_mixup.yaml"),
}
BOOKKEEPING = {"description", "paper"}


def _configs():
    return {ablation.row_name(r): r for r in ablation.DEFAULT_RECIPES}


def test_ladder_rows_each_add_one_refinement():
    recipes = _configs()
    assert list(recipes) == list(ablation.LADDER)
    configs = {name: ablation.RunSpec(name, path, 0, "").config().to_dict()
               for name, path in recipes.items()}
    efficient = configs["efficient"]
    # efficient (§3 on CPU): warmup, zero gamma, no bias decay, FP32, step decay at 1/4,
    # 1/2, 3/4 of the run, none of §5's refinements; ResNet-18-D on the 32 px digits
    assert efficient["model"] == "resnet18_v1d" and efficient["data"]["input_size"] == 32
    assert efficient["classes"] == 10 and efficient["dtype"] == "float32"
    assert efficient["warmup_epochs"] > 0 and efficient["zero_gamma"]
    assert efficient["no_bias_decay"] and efficient["lr_mode"] == "step"
    e = efficient["epochs"]
    assert efficient["lr_step_epochs"] == [e // 4, e // 2, 3 * e // 4]
    assert efficient["label_smoothing"] == 0 and efficient["mixup_alpha"] == 0
    assert not efficient["distill"]
    names = list(ablation.LADDER)
    for above, row in zip(names, names[1:]):
        changed = {k for k in configs[row] if configs[row][k] != configs[above][k]}
        assert changed - BOOKKEEPING <= set(LADDER_STEPS[row]), row
        for key, value in LADDER_STEPS[row].items():
            assert configs[row][key] == value, (row, key)
    teacher = ablation.RunSpec("teacher", ablation.DEFAULT_TEACHER, 0, "").config()
    # the paper's teacher: a deeper ResNet-D with cosine decay and label smoothing, no mixup
    assert teacher.model == "resnet34_v1d" and teacher.lr_mode == "cosine"
    assert teacher.label_smoothing == 0.1 and teacher.mixup_alpha == 0 and not teacher.distill
    assert teacher.epochs == e
    # the distill-with-mixup row's teacher: the same, trained with mixup (paper §5.5)
    mixup_teacher = ablation.RunSpec("teacher_mixup", os.path.join(
        ablation.RECIPES_DIR, configs["distill_mixup"]["teacher_recipe"]), 0, "").config()
    changed = {k for k, v in mixup_teacher.to_dict().items() if v != teacher.to_dict()[k]}
    assert changed == {"mixup_alpha", "description"} and mixup_teacher.mixup_alpha == 0.2


def test_plan_trains_the_teacher_first_and_hands_it_to_distilling_rows(tmp_path):
    specs = ablation.plan(ablation.DEFAULT_RECIPES, [0, 1, 2], None, tmp_path)
    assert len(specs) == 1 + 5 * 3
    teacher = specs[0]
    assert teacher.teacher and teacher.row == "teacher_mixup"
    assert teacher.out == str(tmp_path / "teacher_mixup_e12_s0")
    assert teacher.config().mixup_alpha == 0.2
    for spec in specs[1:]:
        cfg = spec.config()
        assert isinstance(cfg, TrainConfig) and cfg.seed == spec.seed and not spec.teacher
        assert spec.out == str(tmp_path / f"{spec.row}_e12_s{spec.seed}")
        assert (cfg.teacher == teacher.out) == (spec.row == "distill_mixup")
    quick = ablation.plan(ablation.DEFAULT_RECIPES, [0], 2, tmp_path)
    assert [s.row for s in quick] == ["teacher_mixup", *ablation.LADDER]
    assert all(s.config().epochs == 2 for s in quick)


def test_plan_refuses_bad_rows(tmp_path):
    with pytest.raises(ablation.AblationError, match="share a name"):
        ablation.plan([ablation.DEFAULT_RECIPES[0]] * 2, [0], None, tmp_path)
    with pytest.raises(ablation.AblationError, match="nope.yaml: recipe not found"):
        ablation.plan([str(tmp_path / "nope.yaml")], [0], None, tmp_path)
    other = tmp_path / "distill_r18.yaml"
    other.write_text(f"base: {ablation.DEFAULT_RECIPES[-1]}\nteacher_model: resnet18_v1d\n")
    with pytest.raises(ablation.AblationError, match="teacher_model resnet18_v1d"):
        ablation.plan([str(other)], [0], None, tmp_path)


def test_state_done_partial_new_and_foreign(tmp_path, make_run):
    spec = ablation.plan([ablation.DEFAULT_RECIPES[1]], [0], 3, tmp_path)[0]
    assert ablation.state(spec) == "new"
    config = spec.config().to_dict()
    make_run(spec.out, config, [(0.5, 0.9, 100.0), (0.6, 0.9, 100.0)])
    assert ablation.state(spec) == "partial"  # 2 of 3 epochs
    make_run(spec.out, config, [(0.5, 0.9, 100.0)] * 3)
    assert ablation.state(spec) == "partial"  # no best.params yet
    open(os.path.join(spec.out, "best.params"), "w").close()
    assert ablation.state(spec) == "done"
    make_run(spec.out, dict(config, label_smoothing=0.2), [(0.5, 0.9, 100.0)] * 3)
    with pytest.raises(ablation.AblationError, match="label_smoothing differ.*--force"):
        ablation.state(spec)


def test_train_command_resumes_partial_runs(tmp_path):
    distill = ablation.plan([ablation.DEFAULT_RECIPES[-1]], [1], 2, tmp_path)[1]
    argv = ablation.train_argv(distill, "t.rec", "v.rec", "new")
    assert argv[1] == ablation.TRAIN_SCRIPT and "--resume" not in argv and "--force" not in argv
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    teacher = str(tmp_path / "teacher_mixup_e2_s0")
    assert sets == ["epochs=2", "seed=1", f'teacher="{teacher}"']
    assert ablation.train_argv(distill, "t.rec", "v.rec", "partial")[-1] == "--resume"
    assert ablation.train_argv(distill, "t.rec", "v.rec", "force")[-1] == "--force"


def test_table_numbers(tmp_path, make_run):
    specs = ablation.plan(ablation.DEFAULT_RECIPES[:2], [0, 1], 2, tmp_path)
    finals = {("efficient", 0): 0.90, ("efficient", 1): 0.92, ("cosine", 0): 0.95,
              ("cosine", 1): 0.95}
    for spec in specs:
        make_run(spec.out, spec.config().to_dict(),
                 [(0.5, 0.8, 100.0), (finals[spec.row, spec.seed], 0.99, 100.0)])
    rows = ablation.collect(specs)
    table = parse(ablation.markdown(rows))
    assert [r["row"] for r in table] == ["efficient", "cosine"]
    # 90 and 92: mean 91, sample std sqrt(2) = 1.41
    assert table[0]["top-1 (%)"] == "91.00 ± 1.41" and table[0]["Δ top-1"] == "-"
    assert table[1]["top-1 (%)"] == "95.00 ± 0.00" and table[1]["Δ top-1"] == "+4.00"
    # the paper's Table 6, ResNet-50-D: efficient 77.16, + cosine 77.91
    assert (table[0]["paper R50-D top-1"], table[1]["paper Δ"]) == ("77.16", "+0.75")
    epochs, mean, std = rows[0].curve()
    assert epochs == [1, 2] and mean == pytest.approx([50, 91])
    assert std == pytest.approx([0, np.sqrt(2)])
    one = ablation.collect(specs[:1])
    assert parse(ablation.markdown(one))[0]["top-1 (%)"] == "90.00 ± n/a"


def parse(markdown):
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            for line in lines[2:]]


def test_quick_ablation_runs_and_resumes(tool, tiny32, tmp_path, capsys):
    """``--quick``: the whole ladder and the teacher, one seed, two epochs, on a slice of the
    digits (two batches an epoch); then the same command again trains nothing."""
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = ["--quick", "--data", os.path.dirname(tiny32["train"]), "--out", str(out),
            "--runs", str(runs)]
    main = tool("ablate").main
    assert run_cli(main, argv) == 0
    assert capsys.readouterr().out.count(": training ->") == 6
    text = (out / "table.md").read_text()
    table = parse(text)
    assert [r["row"] for r in table] == list(ablation.LADDER)
    for r in table:
        assert r["seeds"] == "1"
        assert re.fullmatch(r"\d+\.\d\d ± n/a", r["top-1 (%)"]), r
        # the row's recipe, as the table names it, resolves
        path = os.path.join(ablation.ROOT, r["recipe"])
        assert ablation.RunSpec(r["row"], path, 0, "").config().description
    assert "Seeds: 0; epochs per run: 2" in text and "mxnet 1." in text
    assert "Teacher of distill_mixup: recipes/ablation/teacher_mixup.yaml (resnet34_v1d" in text
    assert "`python tools/ablate.py --quick " in text and "cores" in text
    for ext in ("png", "pdf"):
        assert os.path.getsize(out / f"curves.{ext}") > 0
    assert sorted(os.listdir(runs)) == sorted(
        [f"{row}_e2_s0" for row in ablation.LADDER] + ["teacher_mixup_e2_s0"])
    assert run_cli(main, argv) == 0
    again = capsys.readouterr().out
    assert ": training ->" not in again and again.count("finished before, skipped") == 6
    assert parse((out / "table.md").read_text()) == table


def test_errors_are_one_line(tool, tmp_path, capsys):
    main = tool("ablate").main
    for argv, words in ((["--seeds", "a,b", "--dry-run"], "--seeds 'a,b'"),
                        ([str(tmp_path / "none.yaml"), "--dry-run"], "recipe not found"),
                        (["--set", "nope=1", "--dry-run", "--runs", str(tmp_path)], "nope")):
        assert run_cli(main, argv) == 2
        err = capsys.readouterr().err
        assert_one_line_error(err, words)
