"""Supervised warm-start data for the built-in policy: compact countdown problems and their solutions.

Owns the compact format the built-in model reads and writes (prompt `"7,5,9,3->36:"`, completion
`"(7+5)*(9-3)"` then EOS), a brute-force solver that lists many distinct solutions per problem (so the warm
start learns variety, not one answer per prompt), and an exact checker used to measure the model. The checker
parses with `ast`, allows only integers and + - * /, and evaluates with `Fraction`: model text is never run.
The countdown *task* (ladkit/tasks) owns the reward used in training; this module only serves the build.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

# The default task's problem distribution (docs/design.md 9): 4 numbers in 1..10, targets 10..40.
DEFAULT_PROBLEMS = dict(min_numbers=4, max_numbers=4, min_value=1, max_value=10, min_target=10, max_target=40)
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@dataclass(frozen=True)
class Problem:
    """One countdown problem: use every number exactly once to reach the target."""

    numbers: tuple[int, ...]
    target: int
    reference: str = ""  # reasoning-gym's own solution, spaces removed ("" when unknown)

    @property
    def key(self) -> tuple[tuple[int, ...], int]:
        """Order-free identity, used to keep held-out problems out of training."""
        return tuple(sorted(self.numbers)), self.target


def compact_prompt(numbers, target: int) -> str:
    """The compact prompt: `"7,5,9,3->36:"` (no spaces), the exact text the built-in model was trained on."""
    return ",".join(str(n) for n in numbers) + f"->{target}:"


def reasoning_gym_problems(size: int, seed: int) -> list[Problem]:
    """`size` problems from reasoning-gym's countdown generator with the default task's settings."""
    import reasoning_gym

    dataset = reasoning_gym.create_dataset("countdown", size=size, seed=seed, **DEFAULT_PROBLEMS)
    problems = []
    for entry in dataset:
        meta = entry["metadata"]
        problems.append(Problem(tuple(meta["numbers"]), int(meta["target"]), meta["expression"].replace(" ", "")))
    return problems


def _wrap(text: str, prec: int, need: int, strict: bool) -> str:
    """Parenthesise a sub-expression only when precedence (or a right operand of - or /) requires it."""
    return f"({text})" if prec < need or (strict and prec == need) else text


def _combine(a, b, op: str):
    """(value, text, precedence) of `a op b`, or None when the result leaves the positive integers."""
    (va, ta, pa), (vb, tb, pb) = a, b
    if op == "+":
        value = va + vb
    elif op == "-":
        value = va - vb
    elif op == "*":
        value = va * vb
    else:
        value = va // vb if va % vb == 0 else 0
    if value <= 0:  # classic countdown rules: every intermediate result is a positive integer
        return None
    need = _PRECEDENCE[op]
    text = _wrap(ta, pa, need, False) + op + _wrap(tb, pb, need, op in "-/")
    return value, text, need


def _expressions(items: tuple) -> dict[int, set[str]]:
    """All expressions using every item once, grouped by value (items are (value, text, precedence))."""
    if len(items) == 1:
        return {items[0][0]: {items[0][1]}}
    out: dict[int, set[str]] = {}
    for i in range(len(items)):
        for j in range(len(items)):
            if i == j:
                continue
            rest = tuple(item for k, item in enumerate(items) if k not in (i, j))
            for op in "+-*/":
                combined = _combine(items[i], items[j], op)
                if combined is not None:
                    for value, texts in _expressions((*rest, combined)).items():
                        out.setdefault(value, set()).update(texts)
    return out


@lru_cache(maxsize=4096)
def _solutions_by_value(numbers: tuple[int, ...]) -> dict[int, tuple[str, ...]]:
    """Every solution string of a (sorted) multiset of numbers, by value; cached since multisets repeat."""
    leaves = tuple((n, str(n), 3) for n in numbers)  # a bare number never needs parentheses
    return {value: tuple(sorted(texts)) for value, texts in _expressions(leaves).items()}


def solutions(numbers, target: int) -> tuple[str, ...]:
    """Distinct solution strings (positive-integer intermediates, minimal parentheses), sorted."""
    return _solutions_by_value(tuple(sorted(numbers))).get(target, ())


def _evaluate(node) -> tuple[Fraction, list[int]]:
    """Value and the integer literals of an ast node made only of ints and + - * /; ValueError otherwise."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value), [node.value]
    if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
        (left, used_left), (right, used_right) = _evaluate(node.left), _evaluate(node.right)
        op = _AST_OPS[type(node.op)]
        if op == "/" and right == 0:
            raise ValueError("division by zero")
        value = (
            left + right if op == "+" else left - right if op == "-" else left * right if op == "*" else left / right
        )
        return value, used_left + used_right
    raise ValueError(f"not allowed: {type(node).__name__}")


def is_correct(expression: str, numbers, target: int) -> bool:
    """True when `expression` uses each number exactly once and equals `target` exactly (no eval())."""
    text = expression.strip()
    if not text or len(text) > 200:  # a bound keeps ast.parse cheap on degenerate samples
        return False
    try:
        value, used = _evaluate(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return sorted(used) == sorted(numbers) and value == target


def split_problems(problems: list[Problem], held_out: set) -> list[Problem]:
    """Problems whose key is not in `held_out`, each once (the first occurrence wins)."""
    seen, kept = set(held_out), []
    for problem in problems:
        if problem.key not in seen:
            seen.add(problem.key)
            kept.append(problem)
    return kept


def sample_completion(problem: Problem, rng: random.Random) -> str:
    """One solution for a training example: a uniformly random one of all the solver's solutions."""
    options = solutions(problem.numbers, problem.target) or (problem.reference,)
    return rng.choice(options)
