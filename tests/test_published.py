"""The published-runs reader: the parser on log excerpts written here, and the committed data
file against facts read by hand from the logs in dmlc/web-data."""
import os
import re

import pytest

from gluon_tricks import published
from gluon_tricks.errors import UserError

# The two formats of GluonCV's train_imagenet.py logs, abridged: the later bare lines
# (resnet50_v1d-mixup.log) and the older INFO:root: ones with MXNet's own messages between.
NEW_FORMAT = """\
Namespace(batch_size=128, dtype='float16', label_smoothing=True, last_gamma=True, \
log_interval=50, lr=0.4, lr_decay_epoch='40,60', lr_mode='cosine', mixup=True, \
mixup_alpha=0.2, num_epochs=200, num_gpus=8, resume_params='', warmup_lr=0.0, wd=0.0001)
Epoch[0] Batch [49]\tSpeed: 1343.437711 samples/sec\trmse=0.025660\tlr=0.003133
Epoch[0] Batch [99]\tSpeed: 4733.215563 samples/sec\trmse=0.025972\tlr=0.006331
[Epoch 0] training: rmse=0.025922
[Epoch 0] speed: 4170 samples/sec\ttime cost: 312.425813
[Epoch 0] validation: err-top1=0.929508 err-top5=0.811321
Epoch[1] Batch [49]\tSpeed: 4919.050306 samples/sec\trmse=0.026321\tlr=0.083133
"""
OLD_FORMAT = """\
INFO:root:Namespace(batch_size=256, last_gamma=True, log_interval=50, lr=0.4, \
num_gpus=4, warmup_epochs=5)
[18:59:42] src/io/iter_image_recordio_2.cc:170: ImageRecordIOParser2: train.rec
INFO:root:Epoch[119] Batch [1249]\tSpeed: 2718.983741 samples/sec\ttop1-err=0.297330\t\
lr=0.000000
INFO:root:[Epoch 119] training: err-top1=0.297322
INFO:root:[Epoch 119] speed: 2757 samples/sec\ttime cost: 481.302323
INFO:root:[Epoch 119] validation: err-top1=0.291235 err-top5=0.101383
"""


def test_parse_new_format():
    log = published.parse_log(NEW_FORMAT)
    ns = log.namespace
    assert ns["lr"] == 0.4 and isinstance(ns["lr"], float)
    assert ns["batch_size"] == 128 and isinstance(ns["batch_size"], int)
    assert ns["mixup"] is True and ns["dtype"] == "float16" and ns["resume_params"] == ""
    assert ns["lr_decay_epoch"] == "40,60"  # a comma inside a string value
    assert log.lr == ((0, 49, 0.003133), (0, 99, 0.006331), (1, 49, 0.083133))
    (e0,) = log.epochs  # epoch 1 has no summary line yet
    assert e0 == published.PublishedEpoch(
        epoch=0, top1=7.0492, top5=18.8679, samples_per_sec=4170, seconds=312.425813,
        train_metric="rmse", train_value=0.025922)


def test_parse_old_format():
    log = published.parse_log(OLD_FORMAT)
    assert log.namespace == dict(batch_size=256, last_gamma=True, log_interval=50, lr=0.4,
                                 num_gpus=4, warmup_epochs=5)
    assert log.lr == ((119, 1249, 0.0),)
    (e,) = log.epochs
    assert (e.epoch, e.top1, e.top5) == (119, 70.8765, 89.8617)
    assert (e.train_metric, e.train_value, e.samples_per_sec) == ("err-top1", 0.297322, 2757)


@pytest.mark.parametrize("text, words", [
    ("Epoch[0] Batch [49]\tlr=0.1\n", "no Namespace"),
    ("Namespace(lr=__import__('os'))\n", "cannot read its Namespace"),
    (NEW_FORMAT + NEW_FORMAT.replace("lr=0.4,", "lr=0.2,"), "different Namespace lines"),
    (NEW_FORMAT + NEW_FORMAT.splitlines()[1] + "\n", "not in (epoch, batch) order"),
])
def test_parse_errors_are_one_line(text, words):
    with pytest.raises(UserError, match=re.escape(words)) as err:
        published.parse_log(text, source="some.log")
    assert str(err.value).startswith("some.log: ") and "\n" not in str(err.value)


def test_command_args():
    cmd = ("python train_imagenet.py \\\n  --model resnet50_v1d --mode hybrid \\\n"
           "  --lr 0.4 --lr-mode cosine -j 60 --use-rec --last-gamma\n")
    assert published.command_args(cmd) == dict(
        model="resnet50_v1d", mode="hybrid", lr="0.4", lr_mode="cosine", num_workers="60",
        use_rec=True, last_gamma=True)


def test_write_load_round_trip(tmp_path):
    log = published.parse_log(NEW_FORMAT)
    r = published.PublishedRun(namespace=log.namespace, lr=log.lr, epochs=log.epochs,
                               name="x", log_path="a.log", log_commit="0" * 40,
                               log_chars=len(NEW_FORMAT), read_ranges=((0, 100),))
    path = str(tmp_path / "runs.json")
    published.write([r], path)
    assert published.load(path) == {"x": r}
    assert not r.complete


@pytest.fixture(scope="module")
def runs():
    return published.load()


def test_resnet50_v1d_mixup_facts(runs):
    """Read by hand from resnet50_v1d-mixup.log (and the .sh next to it)."""
    r = runs["resnet50_v1d-mixup"]
    assert r.complete and r.log_commit.startswith("bacb8572")
    assert r.lr[0] == (0, 49, 0.003133)
    assert r.lr[-1] == (199, 1249, 0.0)
    assert len(r.lr) == 200 * 25 and len(r.epochs) == 200
    ns = r.namespace
    assert (ns["lr"], ns["batch_size"], ns["num_gpus"], ns["num_epochs"]) == (0.4, 128, 8, 200)
    assert (ns["warmup_epochs"], ns["lr_mode"], ns["dtype"]) == (5, "cosine", "float16")
    assert ns["label_smoothing"] is True and ns["mixup"] is True and ns["mixup_off_epoch"] == 0
    assert ns["no_wd"] is True and ns["last_gamma"] is True
    assert (r.final.epoch, r.final.top1, r.final.top5) == (199, 79.0796, 94.5472)
    assert "--mixup" in r.command and published.command_mismatches(r) == []


@pytest.mark.parametrize("name, first_lr, last_val", [
    # (run, its first lr line, its last validation line as logged: err-top1, err-top5)
    ("resnet50_v1d", (0, 49, 0.003133), (119, 0.215302, 0.057418)),
    ("resnet50_v1b", (0, 49, 0.003133), (119, 0.228974, 0.064094)),
    ("resnet50_v1c", (0, 49, 0.003133), (119, 0.220045, 0.059491)),
    ("resnet50_v1", (0, 49, 0.003133), (119, 0.234594, 0.069057)),
    ("resnet101_v1d", (0, 49, 0.003133), (119, 0.202129, 0.052276)),
    ("resnet101_v1d-mixup", (0, 49, 0.003133), (199, 0.196409, 0.049366)),
    ("resnet152_v1d-mixup", (0, 49, 0.000196), (199, 0.194431, 0.047256)),
    ("resnet18_v1b", (0, 49, 0.003133), (119, 0.291235, 0.101383)),
    ("resnet34_v1b", (0, 49, 0.003133), (119, 0.253268, 0.079620)),
    ("mobilenet1.0", (0, 49, 0.003133), (119, 0.270408, 0.088668)),
    ("inceptionv3-mixup", (0, 49, 0.003133), (199, 0.219786, 0.060288)),
])
def test_log_facts(runs, name, first_lr, last_val):
    r = runs[name]
    assert r.lr[0] == first_lr
    epoch, err1, err5 = last_val
    assert (r.final.epoch, r.final.top1, r.final.top5) == \
        (epoch, pytest.approx(100 * (1 - err1)), pytest.approx(100 * (1 - err5)))


def test_resnet152_v1d_validation_is_flagged(runs):
    """resnet152_v1d.log's validation lines are a placeholder, read by hand: "[Epoch 0]
    validation: err-top1=1.000000 err-top5=1.000000" ... "[Epoch 119] validation:
    err-top1=0.008333 err-top5=0.008333", i.e. 1 - epoch/120 at every epoch. The data keep
    what the log prints and flag it: no final accuracy, no curve; its lr lines stay (its
    first, "Epoch[0] Batch [49] ... lr=0.000783") and its Namespace."""
    r = runs["resnet152_v1d"]
    assert not r.curve_measured and "placeholder" in r.validity and "1 - epoch/120" in r.validity
    assert r.final is None and r.curve == ()
    assert len(r.epochs) == 120
    for e in r.epochs:
        assert e.top1 == e.top5 == pytest.approx(100 * (1 - (1 - e.epoch / 120)), abs=1e-4)
    assert (r.epochs[-1].epoch, r.epochs[-1].top1) == (119, pytest.approx(100 * (1 - 0.008333)))
    assert r.lr[0] == (0, 49, 0.000783) and r.namespace["lr"] == 0.2
    assert r.summary() == "resnet152_v1d: validation flagged (placeholder, not a measurement)"
    assert {n for n, other in runs.items() if not other.curve_measured} == {"resnet152_v1d"}


def test_curve_defect_finds_placeholders_only():
    """Equal top-1 and top-5 errors at every epoch are no measurement; on a 1 - epoch/N line
    the reason names the placeholder. A real log (top-5 error below top-1) is not flagged."""
    def epochs(errors):
        return [published.PublishedEpoch(epoch=i, top1=100 * (1 - a), top5=100 * (1 - b))
                for i, (a, b) in enumerate(errors)]
    placeholder = epochs([(1 - i / 4, 1 - i / 4) for i in range(4)])
    assert "1 - epoch/4" in published.curve_defect(placeholder, 4)
    constant = epochs([(0.5, 0.5)] * 3)
    assert "err-top1 = err-top5" in published.curve_defect(constant, 3)
    assert "placeholder" not in published.curve_defect(constant, 3)
    assert published.curve_defect(epochs([(0.9, 0.8), (0.5, 0.5)]), 2) is None
    log = published.parse_log(NEW_FORMAT)
    assert published.curve_defect(log.epochs, 200) is None


def test_flagged_in_sources_or_by_detection(tmp_path):
    """read_folder flags a placeholder log by itself, and a curve that sources.json flags by
    hand; the flag survives the data file."""
    head = NEW_FORMAT.split("[Epoch 0] training")[0]
    placeholder = head + "".join(f"[Epoch {e}] validation: err-top1={1 - e / 200:f} "
                                 f"err-top5={1 - e / 200:f}\n" for e in range(3))
    (tmp_path / "fake.log").write_text(placeholder)
    (tmp_path / "real.log").write_text(NEW_FORMAT)
    src = {"log_path": "p", "log_commit": "0" * 40, "read_ranges": [[0, 1]]}
    sources = {"fake": dict(src, log_chars=len(placeholder)),
               "real": dict(src, log_chars=len(NEW_FORMAT), validity="copied from another run")}
    fake, real = published.read_folder(str(tmp_path), sources)
    assert "1 - epoch/200" in fake.validity and fake.final is None
    assert real.validity == "copied from another run" and real.curve == ()
    path = str(tmp_path / "runs.json")
    published.write([fake, real], path)
    assert published.load(path) == {"fake": fake, "real": real}


def test_whole_logs(runs):
    """Every log was read whole (one range, the whole file) and has every lr line (one per
    log_interval batches of the script's num_batches, 25 per epoch at a global batch of
    1024) and every epoch."""
    for name, r in runs.items():
        assert r.read_ranges == ((0, r.log_chars),) and r.complete, name
        ns = r.namespace
        epochs = ns["num_epochs"]
        lines = 1281167 // (ns["batch_size"] * ns["num_gpus"]) // ns["log_interval"]
        assert len(r.lr) == lines * epochs and [e.epoch for e in r.epochs] == list(range(epochs))
        assert all(e.top1 is not None and e.samples_per_sec for e in r.epochs), name
    assert len(runs["resnet50_v1d"].lr) == 25 * 120
    # mobilenet1.0.log, mid-run: "[Epoch 57] speed: 5642 samples/sec", "err-top1=0.409598
    # err-top5=0.176100"
    e57 = runs["mobilenet1.0"].epochs[57]
    assert (e57.samples_per_sec, e57.top1, e57.top5) == (5642, 59.0402, 82.39)


def test_namespaces(runs):
    """Facts of the Namespaces, as logged."""
    assert {n: (r.namespace["batch_size"], r.namespace["num_gpus"], r.namespace["lr"])
            for n, r in runs.items() if n.startswith(("resnet152", "resnet18", "resnet34"))} \
        == {"resnet152_v1d": (64, 8, 0.2), "resnet152_v1d-mixup": (32, 8, 0.1),
            "resnet34_v1b": (256, 4, 0.4), "resnet18_v1b": (256, 4, 0.4)}
    assert runs["inceptionv3-mixup"].namespace["input_size"] == 299
    # the older logs predate these flags
    assert "label_smoothing" not in runs["resnet50_v1b"].namespace
    assert runs["mobilenet1.0"].namespace["last_gamma"] is False


def test_commands_that_are_not_their_logs(runs):
    """resnet50_v1.sh is an older step-decay command; resnet101_v1d.sh is the mixup run's."""
    assert dict((k, (a, b)) for k, a, b in published.command_mismatches(runs["resnet50_v1"])) \
        == {"batch_size": (128, "64"), "num_gpus": (8, "4"), "num_workers": (60, "32"),
            "num_epochs": (120, "150"), "lr": (0.4, "0.1"), "lr_decay_epoch": ("40,60", "30,60,90")}
    assert published.command_mismatches(runs["resnet101_v1d-mixup"]) == []
    assert {k for k, _, _ in published.command_mismatches(runs["resnet101_v1d"])} >= \
        {"num_epochs", "mixup"}
    assert all(published.command_mismatches(r) == [] for n, r in runs.items()
               if n not in ("resnet50_v1", "resnet101_v1d"))


def test_every_run(runs):
    assert len(runs) == 13
    for name, r in runs.items():
        assert re.fullmatch(r"[0-9a-f]{40}", r.log_commit), name
        assert r.log_path.startswith("gluoncv/logs/classification/imagenet/"), name
        assert r.namespace["lr_mode"] == "cosine" and r.namespace["warmup_epochs"] == 5, name
        assert len(r.lr) > 250 and r.epochs, name
        assert all(a[:2] < b[:2] for a, b in zip(r.lr, r.lr[1:])), name
        assert all(a.epoch < b.epoch for a, b in zip(r.epochs, r.epochs[1:])), name
        assert all(0 <= lr <= r.namespace["lr"] for _, _, lr in r.lr), name
        assert all(b % r.namespace["log_interval"] == r.namespace["log_interval"] - 1
                   for _, b, _ in r.lr), name


def test_unknown_run():
    with pytest.raises(UserError, match="no published run 'resnet50_v9'.*known: resnet50_v1d"):
        published.run("resnet50_v9")


# recipe -> (published run, keys that differ from it on purpose, and why)
RECIPE_RUNS = {
    "table6/resnet50_v1d_label_smoothing.yaml": ("resnet50_v1d", set()),
    "table6/resnet50_v1d_mixup.yaml": ("resnet50_v1d-mixup", set()),
    "table6/mobilenet1.0_label_smoothing.yaml": ("mobilenet1.0", set()),
    "table6/inception_v3_mixup.yaml": ("inceptionv3-mixup", set()),
    # the paper's teachers are trained as Table 6's efficient rows (batch 1024, FP16); the
    # authors' zoo runs used smaller batches in FP32 at the same lr per 256
    "teacher/resnet152_v1d.yaml": ("resnet152_v1d", {"batch_size", "dtype"}),
    "teacher/resnet152_v1d_mixup.yaml": ("resnet152_v1d-mixup", {"batch_size", "dtype"}),
}


def namespace_as_recipe(ns):
    """A published run's Namespace as our recipe keys: the global batch is the per-GPU batch
    times the GPUs; the script's --lr is the rate of that batch (it does not rescale it),
    so per 256 it is lr * 256 / batch; --label-smoothing is eps = 0.1 (hard-coded in the
    script) in GluonCV's eps/K form; --no-wd (absent from the oldest scripts: off) is our
    no_bias_decay; --last-gamma our zero_gamma."""
    batch = ns["batch_size"] * ns["num_gpus"]
    smoothing = 0.1 if ns.get("label_smoothing") else 0.0
    return dict(
        model={"inceptionv3": "inception_v3"}.get(ns["model"], ns["model"]),
        batch_size=batch, base_lr_per_256=ns["lr"] * 256 / batch, momentum=ns["momentum"],
        wd=ns["wd"], epochs=ns["num_epochs"], warmup_epochs=ns["warmup_epochs"],
        lr_mode=ns["lr_mode"], label_smoothing=smoothing,
        mixup_alpha=ns["mixup_alpha"] if ns.get("mixup") else 0.0,
        mixup_off_epochs=ns.get("mixup_off_epoch", 0), no_bias_decay=bool(ns.get("no_wd")),
        zero_gamma=bool(ns.get("last_gamma")), dtype=ns["dtype"])


@pytest.mark.parametrize("recipe", sorted(RECIPE_RUNS))
def test_recipes_resolve_to_their_published_runs_settings(recipe):
    """Every recipe with a published counterpart names it and resolves to its
    hyper-parameters, but for the differences stated in RECIPE_RUNS; under
    conventions: gluoncv its smoothing is the script's too."""
    from gluon_tricks.train.config import resolve
    name, differs = RECIPE_RUNS[recipe]
    path = os.path.join(os.path.dirname(__file__), "..", "recipes", recipe)
    cfg = resolve(path)
    assert cfg.published_run == name
    expected = namespace_as_recipe(published.run(name).namespace)
    got = {k: cfg.peak_lr() * 256 / cfg.batch_size if k == "base_lr_per_256"
           else getattr(cfg, k) for k in expected}
    assert {k for k in expected if got[k] != pytest.approx(expected[k])} == differs, \
        (recipe, {k: (got[k], expected[k]) for k in expected})
    gluoncv = resolve(path, [("conventions", "gluoncv")])
    assert gluoncv.label_smoothing_mode == "gluoncv" and gluoncv.lr_formulas == "gluoncv"
    assert gluoncv.loss_scale == "1"  # the script scales no loss


def test_every_recipe_with_a_published_run_is_listed():
    """No recipe names a published run this test file does not check."""
    import glob
    from gluon_tricks.train.config import resolve
    root = os.path.join(os.path.dirname(__file__), "..", "recipes")
    named = {os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "table*", "*.yaml"))
             + glob.glob(os.path.join(root, "teacher", "*.yaml"))
             if "table8" not in p and "table9" not in p and resolve(p).published_run}
    assert named == set(RECIPE_RUNS)


@pytest.mark.parametrize("name", sorted(published.load()))
def test_our_schedule_reproduces_every_logged_lr(name):
    """Every logged lr of every published run is our schedule (paper formulas) one update
    earlier, within one unit of the printed digit (the script prints %f: 1e-6): the
    published runs ran GluonCV's pre-0.4 LRScheduler, whose update(i) got the 0-based batch
    i before update i + 1, so update k ran at the rate of ours at k - 1 (update 1 at 0).
    GluonCV 0.10's LRSequential (conventions: gluoncv) gives update k eta k / (m - 1): it
    misses the logged lrs by up to 1.3e-4 (docs/notes.md §3)."""
    from gluon_tricks.run.schedule import LRSchedule
    run = published.run(name)
    ns = run.namespace
    batches = 1281167 // (ns["batch_size"] * ns["num_gpus"])  # the script's num_batches
    ours = LRSchedule(peak_lr=ns["lr"], batches_per_epoch=batches, epochs=ns["num_epochs"],
                      warmup_epochs=ns["warmup_epochs"], mode=ns["lr_mode"])
    for epoch, batch, lr in run.lr:
        k = epoch * batches + batch + 1  # the logs print the 0-based batch index
        assert lr == pytest.approx(ours.lr(k - 1) if k > 1 else 0.0, abs=1e-6), (epoch, batch)
    assert len(run.lr) >= 100
