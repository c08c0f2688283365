"""Every recipe resolves, each table row's resolved values are the paper's (paper §2-§6),
and every recipe's resolved values are pinned, so that an edit to a base shows up as a
diff of every row it changes."""
import difflib
import glob
import os

import pytest
import yaml

from gluon_tricks.run.recipe import ConfigError, parse_override, recipe_chain
from gluon_tricks.train.config import TrainConfig, resolve
from gluon_tricks.train.loss_scale import StaticLossScaler, scaler_of

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "recipes")


def _is_transfer(path):
    """Recipes of tools/transfer.py (a ``task:`` in their chain) are tested in
    tests/transfer/test_recipes.py."""
    return any("task" in content for _, content in recipe_chain(path))


RECIPES = sorted(p for p in glob.glob(os.path.join(ROOT, "**", "*.yaml"), recursive=True)
                 if not _is_transfer(p))

# The paper's settings, written out here from the paper's text, not read from the recipes.
BASELINE = dict(batch_size=256, peak_lr=0.1, epochs=120, warmup_epochs=0, lr_mode="step",
                lr_step_epochs=[30, 60, 90], zero_gamma=False, no_bias_decay=False,
                dtype="float32", label_smoothing=0.0, mixup_alpha=0.0, distill=False,
                momentum=0.9, wd=1e-4, classes=1000)
EFFICIENT = dict(BASELINE, batch_size=1024, peak_lr=0.4, warmup_epochs=5, zero_gamma=True,
                 no_bias_decay=True, dtype="float16")


def expected_rows():
    rows = {}
    for net in ("resnet50_v1", "inception_v3", "mobilenet1.0"):
        rows[f"table2/{net}.yaml"] = dict(BASELINE, model=net)
    for bs in (256, 1024):
        row = dict(BASELINE, model="resnet50_v1", batch_size=bs, peak_lr=0.1 * bs / 256)
        for name, change in (("linear_scaling", {}), ("warmup", dict(warmup_epochs=5)),
                             ("zero_gamma", dict(zero_gamma=True)),
                             ("no_bias_decay", dict(no_bias_decay=True)),
                             ("fp16", dict(dtype="float16"))):
            row = dict(row, **change)
            rows[f"table4/bs{bs}_{name}.yaml"] = row
    for v in ("", "b", "c", "d"):
        rows[f"table5/resnet50_v1{v}.yaml"] = dict(EFFICIENT, model=f"resnet50_v1{v}")
    for net in ("resnet50_v1d", "inception_v3", "mobilenet1.0"):
        eff = dict(EFFICIENT, model=net, zero_gamma=net.startswith("resnet"))
        cos = dict(eff, lr_mode="cosine")
        ls = dict(cos, label_smoothing=0.1)
        distill = dict(ls, distill=True, temperature=20.0, teacher_model="resnet152_v1d",
                       teacher_recipe="teacher/resnet152_v1d.yaml", hard_weight=None)
        mix = dict(ls, mixup_alpha=0.2, epochs=200)
        # §5.5: the students trained with mixup distill from a teacher trained with mixup
        both = dict(mix, distill=True, temperature=20.0, teacher_model="resnet152_v1d",
                    teacher_recipe="teacher/resnet152_v1d_mixup.yaml", hard_weight=None)
        for name, row in (("efficient", eff), ("cosine", cos), ("label_smoothing", ls),
                          ("distill", distill), ("mixup", mix), ("distill_mixup", both)):
            rows[f"table6/{net}_{name}.yaml"] = row
    rows["table7/places365_resnet50_v1d_efficient.yaml"] = dict(
        EFFICIENT, model="resnet50_v1d", classes=365)
    rows["table7/places365_resnet50_v1d_best.yaml"] = dict(
        EFFICIENT, model="resnet50_v1d", classes=365, lr_mode="cosine", label_smoothing=0.1,
        mixup_alpha=0.2, epochs=200)
    rows["teacher/resnet152_v1d.yaml"] = dict(EFFICIENT, model="resnet152_v1d",
                                              lr_mode="cosine", label_smoothing=0.1,
                                              mixup_alpha=0.0, epochs=120)
    rows["teacher/resnet152_v1d_mixup.yaml"] = dict(rows["teacher/resnet152_v1d.yaml"],
                                                    mixup_alpha=0.2, epochs=200)
    # the backbone of Tables 8/9's B-standard row: ResNet-50-B, baseline training
    rows["backbone/resnet50_v1b_standard.yaml"] = dict(BASELINE, model="resnet50_v1b")
    # GluonCV's finetune_minc.py: lr 0.001 at batch 64, x0.75 at 10/20/30 of 40, no warmup
    for net in ("resnet50_v1d", "mobilenet1.0"):
        rows[f"finetune/{net}.yaml"] = dict(
            BASELINE, model=net, batch_size=64, peak_lr=0.001, epochs=40, warmup_epochs=0,
            lr_step_epochs=[10, 20, 30], lr_step_factor=0.75, wd=1e-4, init=None)
    return rows


def test_every_distilling_recipe_names_a_teacher_recipe_that_fits():
    """The teacher recipe exists, trains the model the row loads as teacher, with the
    row's classes, and uses mixup exactly when the student does (paper §5.5)."""
    distilling = [p for p in RECIPES if resolve(p).distill]
    assert len(distilling) >= 7
    for path in distilling:
        cfg = resolve(path)
        assert cfg.teacher_recipe, f"{path} names no teacher_recipe"
        teacher = resolve(os.path.join(ROOT, cfg.teacher_recipe))
        assert teacher.model == cfg.teacher_model and teacher.classes == cfg.classes, path
        assert (teacher.mixup_alpha > 0) == (cfg.mixup_alpha > 0), path
        assert not teacher.distill, path


def test_every_recipe_resolves():
    assert len(RECIPES) >= len(expected_rows())
    for path in RECIPES:
        cfg = resolve(path)
        assert isinstance(cfg, TrainConfig)


@pytest.mark.parametrize("rel,expected", sorted(expected_rows().items()))
def test_table_row_has_the_papers_values(rel, expected):
    cfg = resolve(os.path.join(ROOT, rel))
    for key, value in expected.items():
        got = cfg.peak_lr() if key == "peak_lr" else getattr(cfg, key)
        assert got == pytest.approx(value), f"{rel}: {key} = {got!r}, the paper's is {value!r}"
    if "table" in rel:
        assert cfg.paper, f"{rel} names no paper row"


PINNED = os.path.join(os.path.dirname(__file__), "resolved_recipes.yaml")


def test_every_recipe_resolves_to_its_pinned_values():
    """resolved_recipes.yaml holds what every recipe resolves to. After a deliberate change
    of a recipe, rewrite it with ``GT_PIN_RECIPES=1 pytest tests/train/test_recipes.py`` and
    read ``git diff``: it lists every row the change reaches."""
    got = yaml.safe_dump({os.path.relpath(p, ROOT): resolve(p).to_dict() for p in RECIPES},
                         sort_keys=False, default_flow_style=None, width=100)
    if os.environ.get("GT_PIN_RECIPES"):
        with open(PINNED, "w") as f:
            f.write(got)
    with open(PINNED) as f:
        pinned = f.read()
    diff = list(difflib.unified_diff(pinned.splitlines(), got.splitlines(), "pinned",
                                     "resolved now", lineterm="", n=8))
    assert not diff, "recipes resolve to other values than pinned:\n" + "\n".join(diff[:200])


def test_recipe_chains_are_shallow():
    """Tables 5-7 and the teacher build on the named base (the paper's §3 efficient
    setting), not on a row of another table; each table's own ladder adds one trick a row."""
    for path in RECIPES:
        chain = [os.path.relpath(p, ROOT) for p, _ in recipe_chain(path)]
        table = os.path.relpath(path, ROOT).split(os.sep)[0]
        for link in chain[:-1]:
            assert link.startswith(("base" + os.sep, table + os.sep)) or \
                link == "demo.yaml", (path, chain)
        assert len(chain) <= 9, (path, chain)


def test_every_table_row_has_a_recipe():
    names = {os.path.relpath(p, ROOT) for p in RECIPES}
    missing = set(expected_rows()) - names
    assert not missing


def test_unknown_key_names_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: " + os.path.abspath(os.path.join(ROOT, "table2/resnet50_v1.yaml"))
                   + "\nlabel_smothing: 0.1\n")
    with pytest.raises(ConfigError) as e:
        resolve(str(bad))
    assert "label_smothing" in str(e.value) and str(bad) in str(e.value)
    assert "\n" not in str(e.value)


def test_overrides_win_and_are_type_checked():
    cfg = resolve(os.path.join(ROOT, "table2/resnet50_v1.yaml"),
                  [parse_override("label_smoothing=0.1"), parse_override("epochs=3"),
                   parse_override("data.min_area=0.2")])
    assert cfg.label_smoothing == 0.1 and cfg.epochs == 3
    assert cfg.data.min_area == 0.2 and cfg.data.input_size == 224
    with pytest.raises(ConfigError, match="data.min_random_area"):
        resolve(None, [parse_override("data.min_random_area=0.2")])
    with pytest.raises(ConfigError, match="epochs"):
        resolve(None, [parse_override("epochs=many")])
    with pytest.raises(ConfigError, match="lr_mode"):
        resolve(None, [parse_override("lr_mode=linear")])
    with pytest.raises(ConfigError, match="nope"):
        resolve(None, [parse_override("nope=1")])


def test_missing_and_malformed_recipes(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve(str(tmp_path / "none.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        resolve(str(bad))
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        resolve(str(loop))


def test_toml_recipes_work_too(tmp_path):
    t = tmp_path / "r.toml"
    t.write_text('model = "resnet18_v1d"\nbatch_size = 64\n')
    cfg = resolve(str(t))
    assert cfg.model == "resnet18_v1d" and cfg.batch_size == 64


def test_recipe_files_that_are_no_recipes(tmp_path):
    """A folder, deep nesting and a base that is not a path: one-line errors."""
    deep = tmp_path / "deep.yaml"
    deep.write_text("model: " + "[" * 5000 + "]" * 5000 + "\n")
    base = tmp_path / "base.yaml"
    base.write_text("base: 5\n")
    for path, words in ((tmp_path, "a folder"), (deep, "deep.yaml"), (base, "'base'")):
        with pytest.raises(ConfigError, match=words) as e:
            resolve(str(path))
        assert "\n" not in str(e.value)


def test_hard_weight_is_a_weight():
    assert resolve(None, [("hard_weight", 0.5)]).hard_weight == 0.5
    assert resolve(None).hard_weight is None  # the paper's Eq. 6
    for bad in (1.5, -0.1):
        with pytest.raises(ConfigError, match=r"--set hard_weight: 'hard_weight' must be in"):
            resolve(None, [("hard_weight", bad)])


def test_a_teacher_run_from_another_recipe_is_named(tmp_path):
    """A distill-with-mixup row handed the teacher trained without mixup says so."""
    import json
    from gluon_tricks.train.loop import teacher_recipe_mismatch
    run = tmp_path / "teacher_run"
    run.mkdir()
    (run / "command.json").write_text(json.dumps(
        {"recipe": os.path.abspath(os.path.join(ROOT, "teacher", "resnet152_v1d.yaml"))}))
    row = resolve(os.path.join(ROOT, "table6", "resnet50_v1d_distill_mixup.yaml"),
                  [("teacher", str(run))])
    note = teacher_recipe_mismatch(row)
    assert "teacher/resnet152_v1d.yaml" in note and "recipes/teacher/resnet152_v1d_mixup" in note
    plain = resolve(os.path.join(ROOT, "table6", "resnet50_v1d_distill.yaml"),
                    [("teacher", str(run))])
    assert teacher_recipe_mismatch(plain) is None
    params = tmp_path / "t.params"  # a bare .params file is not judged
    params.write_bytes(b"")
    assert teacher_recipe_mismatch(resolve(None, [("distill", True), ("teacher", str(params)),
                                                  ("teacher_recipe", "x.yaml")])) is None


def test_conventions_choose_every_difference_and_each_stays_overridable():
    """conventions: gluoncv gives each key where the paper's text and the authors' script
    differ the script's value (GluonCV 0.10 train_imagenet.py: LRSequential, MSRAPrelu,
    BasicBlockV1b without last_gamma, eps/K smoothing, hard_weight 0.5, and no loss scaling:
    its FP16 is multi_precision on the unscaled loss, i.e. a static scale of 1); a key set by
    the recipe or --set keeps its own value; paper is the dataclass defaults."""
    paper = resolve(None)
    gluoncv = resolve(None, [("conventions", "gluoncv")])
    got = {k: getattr(gluoncv, k) for k in ("lr_formulas", "initializer", "zero_gamma_basic",
                                            "label_smoothing_mode", "hard_weight", "loss_scale")}
    assert got == dict(lr_formulas="gluoncv", initializer="msra", zero_gamma_basic=False,
                       label_smoothing_mode="gluoncv", hard_weight=0.5, loss_scale="1")
    assert {k: getattr(paper, k) for k in got} == dict(
        lr_formulas="paper", initializer="xavier", zero_gamma_basic=True,
        label_smoothing_mode="paper", hard_weight=None, loss_scale="dynamic")
    fp16 = resolve(None, [("conventions", "gluoncv"), ("dtype", "float16")])
    scaler = scaler_of(fp16.loss_scale, fp16.dtype)
    assert isinstance(scaler, StaticLossScaler) and scaler.scale == 1.0
    mixed = resolve(None, [("conventions", "gluoncv"), ("hard_weight", None),
                           ("lr_formulas", "paper")])
    assert mixed.hard_weight is None and mixed.lr_formulas == "paper"
    assert mixed.initializer == "msra"
    with pytest.raises(ConfigError, match="conventions"):
        resolve(None, [("conventions", "authors")])


def alias_bomb(levels=9):
    """A "billion laughs" in flow style, as one YAML value of about 450 bytes: each anchor
    is nine aliases of the one before, 9^9 strings once expanded."""
    value = "[&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"
    for i in range(1, levels):
        value += f", &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]"
    return value + "]"


BOMB_PLACES = {
    "description": "description: {bomb}\n",
    "base": "base: {bomb}\n",
    "model": "model: {bomb}\n",
    "data.mean_rgb": "data:\n  mean_rgb: {bomb}\n",
}

# Resolved in one child process allowed 300 MiB more than it holds once imported: without
# a bound the resolver ran for 91 s and took 1.9 GB before a MemoryError; a hang must fail
# the test, not the machine.
BOUNDED = """
import json, resource, sys
from gluon_tricks.run.recipe import ConfigError, parse_override
from gluon_tricks.train.config import resolve
with open("/proc/self/statm") as f:
    mapped = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (mapped + (300 << 20),) * 2)
errors = []
for recipe, sets in json.loads(sys.argv[1]):
    try:
        resolve(recipe, [parse_override(a) for a in sets])
        errors.append(None)
    except ConfigError as e:
        errors.append(str(e))
print(json.dumps(errors))
"""
SET_PLACES = ("description", "model", "data.mean_rgb")


@pytest.fixture(scope="module")
def bomb_errors(tmp_path_factory):
    """{(where, place): the error of resolving the bomb there} for where in recipe, --set."""
    import json
    import subprocess
    import sys
    folder = tmp_path_factory.mktemp("bombs")
    cases = {}
    for place, text in BOMB_PLACES.items():
        recipe = folder / f"{place}.yaml"
        recipe.write_text(text.format(bomb=alias_bomb()))
        assert len(recipe.read_bytes()) < 600
        cases["recipe", place] = (str(recipe), [])
    for key in SET_PLACES:
        cases["--set", key] = (None, [f"{key}={alias_bomb()}"])
    done = subprocess.run([sys.executable, "-c", BOUNDED, json.dumps(list(cases.values()))],
                          capture_output=True, text=True, timeout=30,
                          cwd=os.path.join(ROOT, ".."))
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(zip(cases, json.loads(done.stdout)))


@pytest.mark.parametrize("place", sorted(BOMB_PLACES))
def test_an_alias_bomb_in_a_recipe_is_a_quick_one_line_error(bomb_errors, place):
    error = bomb_errors["recipe", place]
    assert error and "\n" not in error and f"{place}.yaml" in error and "alias" in error, error


@pytest.mark.parametrize("key", SET_PLACES)
def test_an_alias_bomb_in_set_is_a_quick_one_line_error(bomb_errors, key):
    error = bomb_errors["--set", key]
    assert error and "\n" not in error and f"--set {key}" in error and "alias" in error, error


def test_recipes_are_bounded_in_size_and_depth(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("description: " + "x" * (1 << 20) + "\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("model: " + "[" * 50 + "]" * 50 + "\n")
    for path, words in ((big, "too large"), (deep, "too deep")):
        with pytest.raises(ConfigError, match=words) as e:
            resolve(str(path))
        assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_quoted_values_are_cut_to_a_readable_length(tmp_path):
    """A long wrong value (no alias needed) is quoted in 80 characters, in recipes and in
    --set alike."""
    long_list = "[" + ", ".join(["1"] * 5000) + "]"
    recipe = tmp_path / "long.yaml"
    recipe.write_text(f"model: {long_list}\n")
    for call in (lambda: resolve(str(recipe)),
                 lambda: resolve(None, [parse_override(f"model={long_list}")]),
                 lambda: resolve(None, [parse_override("epochs=" + "9" * 5000)]),
                 lambda: parse_override("x" * 5000)):
        with pytest.raises(ConfigError) as e:
            call()
        assert len(str(e.value)) < 400 and "..." in str(e.value), str(e.value)[:500]


def test_a_saved_config_with_an_alias_bomb_is_a_quick_one_line_error():
    """A run folder's config.yaml is read by the run folder (aliases and all): quoting the
    value in the error walks no more of it than it shows (an alarm ends a hang)."""
    import signal

    from gluon_tricks.train.config import from_saved
    bomb = yaml.safe_load(alias_bomb())
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("quoting the value hung"))
    signal.alarm(30)
    try:
        for key, config in (("description", {"description": bomb}),
                            ("mean_rgb", {"data": {"mean_rgb": bomb}})):
            with pytest.raises(ConfigError, match=key) as e:
                from_saved(config, "config.yaml")
            assert "\n" not in str(e.value) and len(str(e.value)) < 300, str(e.value)[:500]
    finally:
        signal.alarm(0)


def test_floats_as_users_write_them(tmp_path):
    """YAML 1.1 reads 5e-5 (no dot) as text; a float key takes what Python's float() reads,
    then the same finite and range checks."""
    assert yaml.safe_load("wd: 5e-5") == {"wd": "5e-5"}
    recipe = tmp_path / "r.yaml"
    recipe.write_text("wd: 5e-5\nbase_lr_per_256: 1E-1\n")
    cfg = resolve(str(recipe), [parse_override("momentum=9e-1")])
    assert (cfg.wd, cfg.base_lr_per_256, cfg.momentum) == (5e-5, 0.1, 0.9)
    assert isinstance(cfg.wd, float)
    for text, words in (("wd=nan", ("--set wd", "finite")), ("wd=-1e-4", ("'wd'", "[0, inf)")),
                        ("wd=.inf", ("finite",)), ("wd=5e-5x", ("must be float", "5e-5x"))):
        with pytest.raises(ConfigError) as e:
            resolve(None, [parse_override(text)])
        for word in words:
            assert word in str(e.value), (text, str(e.value))


@pytest.mark.parametrize("text, words", [
    ("data.std_rgb=[.nan,1,1]", ("data.std_rgb[0]", "finite")),
    ("data.std_rgb=[1,0,1]", ("data.std_rgb[1]", "(0, inf)")),
    ("data.mean_rgb=[1,2,.inf]", ("data.mean_rgb[2]", "finite")),
    ("lr_step_epochs=[.nan]", ("lr_step_epochs[0]", "must be int")),
    ("lr_step_epochs=[1.5]", ("lr_step_epochs[0]", "must be int", "1.5")),
    ("lr_step_epochs=[10, true]", ("lr_step_epochs[1]", "must be int")),
    ("lr_step_epochs=10", ("lr_step_epochs", "list of numbers"))])
def test_each_element_of_a_list_is_checked_as_a_value_is(text, words):
    with pytest.raises(ConfigError) as e:
        resolve(None, [parse_override(text)])
    assert "\n" not in str(e.value) and str(e.value).startswith("--set ")
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_lists_that_fit_are_taken_as_their_elements_type():
    cfg = resolve(None, [parse_override("data.std_rgb=[1, 2e-1, '5e-1']"),
                         parse_override("lr_step_epochs=[3, 6]"), parse_override("epochs=9")])
    assert cfg.data.std_rgb == (1.0, 0.2, 0.5) and cfg.lr_step_epochs == [3, 6]


@pytest.mark.parametrize("model, size, words", [
    ("resnet18_v1d", 1, ("data.input_size 1", "resnet18_v1d", "at least 32")),
    ("inception_v3", 224, ("data.input_size 224", "at least 299")),
    ("resnet18_v1d", 20000, ("'data.input_size'", "[1, 2048]", "20000"))])
def test_crops_no_network_takes_are_refused(model, size, words):
    with pytest.raises(ConfigError) as e:
        resolve(None, [parse_override(f"model={model}"),
                       parse_override(f"data.input_size={size}")])
    assert "\n" not in str(e.value)
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_a_key_given_twice_is_refused_naming_its_line(tmp_path):
    """YAML's loaders keep the last value silently."""
    recipe = tmp_path / "twice.yaml"
    recipe.write_text("epochs: 3\nwd: 0.0001\nepochs: 30\n")
    with pytest.raises(ConfigError) as e:
        resolve(str(recipe))
    assert str(e.value) == f"{recipe}:3: key 'epochs' is given twice; keep one"
    recipe.write_text("data:\n  input_size: 32\n  input_size: 64\n")
    with pytest.raises(ConfigError, match="twice.yaml:3: key 'input_size' is given twice"):
        resolve(str(recipe))


def test_a_base_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("base: pipe.yaml\n")
    with pytest.raises(ConfigError) as e:
        resolve(str(recipe))  # reading the FIFO would wait for a writer forever
    assert "pipe.yaml: not a regular file" in str(e.value) and "\n" not in str(e.value)
