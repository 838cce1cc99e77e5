"""Nothing ladkit reads from a run folder, a config file, a data set or a model answer can execute code.

Each hostile input carries a canary: a command that would create a file if it ran. The tests check the input
is refused with a one-line LadkitError (or ExpressionError) and that the canary never appears. A last test
scans the package source for the calls that could run code while loading.
"""

from __future__ import annotations

import ast
import os
import pickle
import re
import time
from pathlib import Path

import pytest
import torch

from ladkit.config import load_yaml
from ladkit.errors import LadkitError
from ladkit.tasks.expressions import ExpressionError, canonical_form, evaluate, parse_expression
from ladkit.training.checkpoint import STATE_FILE, load_state
from ladkit.training.resolve import resolve

ROOT = Path(__file__).resolve().parents[2]


class _Bomb:
    """Unpickling this runs `os.system(command)`."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_bomb_as_trainer_state_is_refused_and_never_runs(tmp_path):
    canary = tmp_path / "canary"
    folder = tmp_path / "checkpoints" / "step_000001"
    folder.mkdir(parents=True)
    state = {"optimizer": _Bomb(f"touch {canary}"), "scheduler": {}}
    torch.save(state, folder / STATE_FILE)  # a real torch zip archive whose pickle calls os.system
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    with pytest.raises(
        LadkitError, match=rf"checkpoint .* has an unreadable {STATE_FILE} \(UnpicklingError\); delete it"
    ):
        load_state(folder, optimizer, scheduler, {})
    assert not canary.exists()


def test_plain_pickle_bomb_as_trainer_state_is_refused_and_never_runs(tmp_path):
    canary = tmp_path / "canary"
    (tmp_path / STATE_FILE).write_bytes(pickle.dumps(_Bomb(f"touch {canary}")))  # legacy (non-zip) format
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    with pytest.raises(LadkitError, match=f"unreadable {STATE_FILE}"):
        load_state(tmp_path, optimizer, scheduler, {})
    assert not canary.exists()


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {canary}']",
        "!!python/object/new:os.system ['touch {canary}']",
        "!!python/name:os.system",
        "!!python/object:ladkit.training.config.TrainConfig {{steps: 3}}",
    ],
)
def test_yaml_config_with_python_tags_is_refused(tmp_path, tag):
    canary = tmp_path / "canary"
    path = tmp_path / "evil.yaml"
    path.write_text(f"steps: 3\nseed: {tag.format(canary=canary)}\n")
    with pytest.raises(LadkitError, match=r"^config file .*evil\.yaml is not valid YAML at line 2; fix its syntax$"):
        load_yaml(path)
    with pytest.raises(LadkitError):  # the same through the train command's resolution
        resolve(str(path), [], {})
    assert not canary.exists()


def test_set_override_with_a_python_tag_stays_text(tmp_path):
    """`--set seed=!!python/...` is not YAML ladkit accepts: it stays a string, and a string is no seed."""
    canary = tmp_path / "canary"
    with pytest.raises(LadkitError, match=r"^seed must be an integer, got .!!python/object/apply:os\.system"):
        resolve(None, [f"seed=!!python/object/apply:os.system ['touch {canary}']"], {})
    assert not canary.exists()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9**9**9", "power operator '\\*\\*' is not allowed"),
        ("2^100000", ""),
        ("__import__('os').system('touch canary')", ""),
        ("().__class__.__bases__[0].__subclasses__()", ""),
        ("lambda: 1", ""),
        ("1" * 13, "integer literal longer than 12 digits"),
        ("1+" * 5000 + "1", "longer than 200 characters"),
        ("(" * 40 + "1" + ")" * 40, "nested deeper than 32 levels"),
        ("-" * 60 + "1", "nested deeper than 32 levels"),
        ("999999999999*" * 14 + "9", "intermediate value exceeds 256 bits"),
        ("1/0", "division by zero"),
        ("1.5+2", ""),
        ("x=1", ""),
    ],
)
def test_expressions_are_parsed_by_the_restricted_parser_quickly(text, reason, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match=reason or None):
        evaluate(parse_expression(text))
    if reason not in ("division by zero", "intermediate value exceeds 256 bits"):  # found only by evaluating
        with pytest.raises(ExpressionError):
            canonical_form(text)
    assert time.perf_counter() - start < 0.5  # bounded work: no big-integer arithmetic, no eval
    assert not (tmp_path / "canary").exists()


def test_the_restricted_parser_still_reads_countdown_answers():
    assert evaluate(parse_expression("(7 + 5) * 9 / 3")) == 36
    assert canonical_form("5+7") == canonical_form("7+5")


# ------------------------------------------------------------------------------------- source scan

# Files allowed to call a dangerous function, and why. Anything else found by the scan fails the test.
WHITELIST = {
    # The code-task sandbox runs model-written programs by design, in a separate, resource-limited process
    # (ladkit/sandbox/runner.py); this launcher is that process's entry point, never the trainer.
    ("ladkit/sandbox/_launcher.py", "compile"),
    ("ladkit/sandbox/_launcher.py", "exec"),
    ("ladkit/sandbox/_launcher.py", "__import__"),  # pre-imports the modules the confined program may need
}


def _sources() -> list[Path]:
    files = sorted((ROOT / "ladkit").rglob("*.py")) + sorted((ROOT / "cli").rglob("*.py"))
    assert len(files) > 20
    return files


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _dangerous_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for eval/exec/pickle loads, torch.load without weights_only=True, yaml.load without a safe
    loader, and trust_remote_code=True given as a literal."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        if isinstance(func, ast.Name) and name in ("eval", "exec", "compile", "__import__"):
            found.append((node.lineno, name))
        if owner in ("pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve") and name in (
            "load", "loads", "open", "Unpickler"
        ):  # fmt: skip
            found.append((node.lineno, f"{owner}.{name}"))
        if owner == "torch" and name == "load":
            weights_only = _keyword(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append((node.lineno, "torch.load without weights_only=True"))
        if owner == "yaml" and name in ("load", "load_all", "unsafe_load", "full_load"):
            loader = _keyword(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if not (isinstance(loader, ast.Attribute) and loader.attr in ("SafeLoader", "CSafeLoader")):
                found.append((node.lineno, f"yaml.{name} without SafeLoader"))
        trust = _keyword(node, "trust_remote_code")
        if isinstance(trust, ast.Constant) and trust.value is True:
            found.append((node.lineno, "trust_remote_code=True"))
    return found


def test_package_source_has_no_code_executing_loaders():
    problems = []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for line, what in _dangerous_calls(ast.parse(path.read_text(encoding="utf-8"))):
            if (rel, what) not in WHITELIST:
                problems.append(f"{rel}:{line}: {what}")
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"trust_remote_code\s*:\s*bool\s*=\s*True", text):
            problems.append(f"{rel}: trust_remote_code defaults to True ({match.group()})")
    assert problems == []


def test_the_scan_catches_what_it_looks_for():
    """The scanner itself: each forbidden pattern is found, and the safe forms are not."""
    bad = (
        "eval(x)\nexec(x)\npickle.load(f)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
        "yaml.load(s)\nyaml.load(s, Loader=yaml.Loader)\nfrom_pretrained(p, trust_remote_code=True)\n"
    )
    assert [line for line, _ in _dangerous_calls(ast.parse(bad))] == list(range(1, 9))
    good = (
        "model.eval()\ntorch.load(p, weights_only=True)\nyaml.safe_load(s)\nyaml.load(s, Loader=yaml.SafeLoader)\n"
        "from_pretrained(p, trust_remote_code=config.trust_remote_code)\n"
    )
    assert _dangerous_calls(ast.parse(good)) == []


def test_whitelisted_exec_is_only_the_sandbox_launcher():
    launcher = ROOT / "ladkit" / "sandbox" / "_launcher.py"
    found = {what for _, what in _dangerous_calls(ast.parse(launcher.read_text()))}
    assert found == {what for _, what in WHITELIST}


def test_model_config_does_not_trust_remote_code_by_default():
    from ladkit.config import build
    from ladkit.training.config import TrainConfig

    assert build(TrainConfig, {}).model.trust_remote_code is False
    assert resolve(None, [], {}).model.trust_remote_code is False
