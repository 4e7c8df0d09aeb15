"""One re-export policy for every package (poseface/__init__.py): a literal `__all__` whose names resolve,
eager imports, or lazy `_EXPORTS` where the package's import must stay light."""

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import poseface

PACKAGES = ["poseface", *sorted(m.name for m in pkgutil.walk_packages(poseface.__path__, "poseface.") if m.ispkg)]
LIGHT = {"poseface", "poseface.data", "poseface.faces", "poseface.train"}  # lazy where they need torch / the trainer


def literal_all(module) -> list[str]:
    """The `__all__` written in the package's `__init__`, read without running it; fails if it is not a literal."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{module.__name__}: no __all__ assignment")


def test_every_package_is_checked():
    assert {"poseface.data", "poseface.faces", "poseface.losses", "poseface.metrics", "poseface.models"} <= set(
        PACKAGES
    )
    assert {"poseface.serve", "poseface.train"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_a_literal_and_every_name_resolves_and_is_listed_by_dir(name):
    module = importlib.import_module(name)
    names = literal_all(module)
    assert names == module.__all__ and len(set(names)) == len(names) and all(isinstance(n, str) for n in names)
    assert names, f"{name}: exports nothing"
    for export in names:
        assert getattr(module, export) is not None, f"{name}.{export}"
    assert set(names) <= set(dir(module))


@pytest.mark.parametrize("name", PACKAGES)
def test_names_are_eager_except_the_lazy_exports_of_light_packages(name):
    module = importlib.import_module(name)
    lazy = set(getattr(module, "_EXPORTS", {}))
    assert bool(lazy) == (name in LIGHT)
    assert lazy <= set(module.__all__)
    assert {n for n in module.__all__ if n not in lazy} <= set(vars(module))  # the rest is imported eagerly


def test_light_packages_import_without_torch_or_the_trainer_and_list_their_lazy_names():
    code = (
        "import sys, poseface, poseface.faces, poseface.data, poseface.train; "
        "assert 'torch' not in sys.modules and 'poseface.train.trainer' not in sys.modules; "
        "assert 'Restorer' in dir(poseface) and 'detect_faces' in dir(poseface.faces); "
        "assert 'FaceDataset' in dir(poseface.data) and 'Trainer' in dir(poseface.train); print('ok')"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "ok"
    )


def test_an_unknown_name_is_the_usual_attribute_error():
    import poseface.faces

    with pytest.raises(AttributeError, match=r"^module 'poseface.faces' has no attribute 'nope'$"):
        poseface.faces.nope  # noqa: B018
