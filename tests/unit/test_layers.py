"""Layers point down: no ladkit module imports a layer above its own, at the top of a file or inside a function.

Every `import ladkit.x` / `from ladkit.x import ...` in every file is parsed with ast (so imports inside
functions and TYPE_CHECKING blocks count too) and checked against LAYERS. A package may import itself
freely; across packages only strictly lower layers. A new top-level module must be given a layer here.
"""

import ast
from pathlib import Path

import pytest

import ladkit

PACKAGE = Path(ladkit.__file__).parent

# Lower numbers are lower layers. Units are top-level modules or subpackages of ladkit.
LAYERS = {
    "ladkit": 0,  # the package root (its version)
    "errors": 0,
    "types": 0,
    "shipped": 0,
    "text": 0,
    "presets": 0,  # YAML presets (data)
    "registry": 1,
    "config": 1,
    "sandbox": 2,
    "advantages": 2,
    "objectives": 2,
    "runs": 2,
    "tasks": 3,  # rewards, including the fault-tolerant calls (tasks/faults.py)
    "models": 4,  # loading, log-probs; the built-in model's warm start scores with tasks
    "metrics": 5,
    "rollout": 5,
    "scoring": 6,  # the correctness rule and sample-and-score, shared by training and evaluation
    "training": 7,
    "bandit": 7,
    "compare": 7,
    "integrations": 7,  # ladkit's objectives and run folders inside TRL (and verl)
    "evaluation": 8,  # `ladkit eval`: reads run folders and checkpoints, so it sits above training
    "viz": 8,
}


def unit_of(module: str) -> str:
    """'ladkit.training.loop' -> 'training'; 'ladkit' -> 'ladkit'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ladkit"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute ladkit import in the file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "ladkit"]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno} uses a relative import; write the absolute module"
            if node.module and node.module.split(".")[0] == "ladkit":
                if node.module == "ladkit":  # `from ladkit import x`: x is the unit, or a name of the root
                    found += [
                        (node.lineno, f"ladkit.{alias.name}" if is_unit(alias.name) else "ladkit")
                        for alias in node.names
                    ]
                else:
                    found.append((node.lineno, node.module))
    return found


def is_unit(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(path)) for path in source_files()}
    assert not units - LAYERS.keys(), f"give these a layer in LAYERS: {sorted(units - LAYERS.keys())}"


def test_no_module_imports_a_layer_above_its_own():
    violations = []
    for path in source_files():
        own = unit_of(module_name(path))
        for line, module in imported_modules(path):
            other = unit_of(module)
            if other != own and other != "ladkit" and LAYERS.get(other, 99) >= LAYERS.get(own, -1):
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({own}) imports {module} ({other})")
    assert not violations, "imports that point up or sideways:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ladkit.training import loop", ["ladkit.training"]),
        ("def f():\n    import ladkit.evaluation.x", ["ladkit.evaluation.x"]),
        ("from ladkit import scoring, runs", ["ladkit.scoring", "ladkit.runs"]),
        ("import torch\nfrom typing import Any", []),
    ],
)
def test_the_parser_sees_imports_anywhere(tmp_path, source, expected):
    # The check is only as good as its parser: imports inside functions and `from ladkit import x` count.
    path = tmp_path / "module.py"
    path.write_text(source)
    assert [module for _, module in imported_modules(path)] == expected
