"""The package's layers (docs/architecture.md): every import points down, the two trainers
never import each other, and no module imports another's private names."""
import ast
import os

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "gluon_tricks")
# top to bottom; a module may import its own folder and anything in a layer below its own
LAYERS = [("cli",), ("report",), ("infer", "export"), ("train", "transfer"), ("run",),
          ("models", "data", "gpu"),
          ("errors", "seeds", "paper", "published", "markdown", "locks", "cpus")]
LAYER = {name: depth for depth, names in enumerate(LAYERS) for name in names}
# export writes the networks that infer opens; the base modules raise errors' exceptions
SAME_LAYER = {("export", "infer")} | {(name, "errors") for name in LAYERS[-1]}


def imports():
    """(module path, imported gluon_tricks module, imported names) of every from-import."""
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, PACKAGE)[:-3].split(os.sep)
            here = ["gluon_tricks"] + (rel[:-1] if rel[-1] == "__init__" else rel[:-1])
            with open(path) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    base = here[:len(here) - node.level + 1] if node.level else []
                    target = ".".join(base + ([node.module] if node.module else []))
                    if target.startswith("gluon_tricks"):
                        yield rel, target, [a.name for a in node.names]
                elif isinstance(node, ast.Import):
                    for a in node.names:
                        if a.name.startswith("gluon_tricks"):
                            yield rel, a.name, []


def top_of(target, names):
    parts = target.split(".")
    return parts[1] if len(parts) > 1 else names[0]


def test_every_import_points_down():
    wrong = []
    for rel, target, names in imports():
        if rel == ["__init__"]:
            continue
        mine, theirs = rel[0], top_of(target, names)
        assert mine in LAYER and theirs in LAYER, (rel, target)
        if mine != theirs and LAYER[theirs] <= LAYER[mine] and (mine, theirs) not in SAME_LAYER:
            wrong.append(f"{'/'.join(rel)} imports {target}")
    assert not wrong, wrong


def test_no_private_name_crosses_a_module():
    crossing = [f"{'/'.join(rel)}: {name} from {target}" for rel, target, names in imports()
                for name in names if name.startswith("_")]
    assert not crossing, crossing
