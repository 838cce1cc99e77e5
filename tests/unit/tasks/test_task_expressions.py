"""The restricted arithmetic language: hand-worked values, rejections with reasons, and the canonical form."""

from __future__ import annotations

from fractions import Fraction

import pytest

from ladkit.tasks.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    ExpressionError,
    canonical_form,
    evaluate,
    literals,
    parse_expression,
)


def value(text: str) -> Fraction:
    return evaluate(parse_expression(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(7+5)*(9-3)", Fraction(72)),  # 12 * 6
        ("2+3*4", Fraction(14)),  # * binds tighter than +
        ("10-3-2", Fraction(5)),  # left-associative: (10-3)-2, not 10-(3-2) = 9
        ("100/10/5", Fraction(2)),  # (100/10)/5
        ("7/2", Fraction(7, 2)),  # exact, not 3 (floor) or 3.5 (float)
        ("1/3+1/3+1/3", Fraction(1)),  # floats would give 0.9999999999999999
        ("-(-3)", Fraction(3)),
        ("2--1", Fraction(3)),  # binary minus then unary minus (reasoning-gym writes "2 - -1")
        ("-3*4", Fraction(-12)),
        (" 8 / ( 3 - 8 / 3 ) ", Fraction(24)),  # 8 / (1/3): the classic fractional countdown solution
        ("007", Fraction(7)),
    ],
)
def test_evaluate_hand_worked(text, expected):
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2**3", "'**'"),
        ("2^3", "'^'"),
        ("x+1", "names are not allowed ('x')"),
        ("abs(3)", "names are not allowed ('abs')"),
        ("__import__('os')", "names are not allowed ('__import__')"),
        ("1.5+2", "decimal"),
        ("2*3e4", "names"),  # scientific notation is not an integer literal
        ("1+1=2", "'='"),
        ("2(3+4)", "unexpected '('"),  # no implicit multiplication
        ("(1+2", "missing ')'"),
        ("1+2)", "unexpected ')'"),
        ("1+", "end of expression"),
        ("", "empty"),
        ("+3", "unexpected '+'"),  # unary plus is not in the grammar
        ("1;2", "';'"),
    ],
)
def test_rejections_say_why(text, reason):
    with pytest.raises(ExpressionError, match=None) as caught:
        parse_expression(text)
    assert reason in str(caught.value)


def test_bounds_on_length_depth_literals_and_magnitude():
    with pytest.raises(ExpressionError, match="longer than"):
        parse_expression("1+" * (MAX_LENGTH // 2) + "1")
    deep = "(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(ExpressionError, match="nested deeper"):
        parse_expression(deep)
    parse_expression("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH)  # exactly at the bound is fine
    with pytest.raises(ExpressionError, match="nested deeper"):
        parse_expression("-" * (MAX_DEPTH + 1) + "1")  # unary chains count too
    with pytest.raises(ExpressionError, match="digits"):
        parse_expression("1234567890123")
    # 7 factors of ~2^40 = ~2^280 > 2^256: refused instead of growing without bound
    with pytest.raises(ExpressionError, match="bits"):
        value("*".join(["999999999999"] * 7))
    with pytest.raises(ExpressionError, match="division by zero"):
        value("5/(3-3)")


def test_literals_in_order_with_repeats():
    assert literals(parse_expression("-(7+5)*(9-3)/5")) == [7, 5, 9, 3, 5]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("7+5", "5+7"),  # commutative +
        ("(1+2)+3", "1+(2+3)"),  # associative +
        ("3*4", "4*3"),  # commutative *
        ("(2*3)*4", "2*(3*4)"),  # associative *
        ("10-(4-1)", "10-4+1"),  # a-(b-c) = a-b+c
        ("10-4+1", "1+10-4"),
        ("8/(4/2)", "8*2/4"),  # a/(b/c) = a*c/b
        ("8/(2*4)", "8/2/4"),  # a/(b*c) = a/b/c
        ("(7+5)*(9-3)", "(9-3)*(5+7)"),
        ("2*(3-4)", "-(2*(4-3))"),  # a sum factor is oriented positive, its sign moves out
        ("-2*(4-3)", "2*-(4-3)"),
        ("--3", "3"),
    ],
)
def test_canonical_merges_reorderings(a, b):
    assert canonical_form(a) == canonical_form(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2*(3+4)", "2*3+2*4"),  # distributivity is a different computation
        ("6*1", "6/1"),  # identities are not merged either
        ("10-4", "4-10"),  # different values
        ("8/2/4", "8/(2/4)"),
        ("(1+2)*3", "1+2*3"),
    ],
)
def test_canonical_keeps_different_computations_apart(a, b):
    assert canonical_form(a) != canonical_form(b)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(7+5)*(9-3)", "(5+7)*(9-3)"),  # factors sorted by (length, text)
        ("10*(9 - 7) + 6", "6+10*(9-7)"),
        ("3-(2-1)", "1+3-2"),  # positive terms first, then the negative ones
        ("2*(3-4)", "-2*(4-3)"),
        ("8/(4/2)", "2*8/4"),
    ],
)
def test_canonical_text_hand_worked(text, expected):
    assert canonical_form(text) == expected


@pytest.mark.parametrize("text", ["(7+5)*(9-3)", "2*(3-4)", "8/(3-8/3)", "-(1+2)*(3-(4-5))/(6/7)", "1-2-3"])
def test_canonical_is_idempotent_and_keeps_the_value(text):
    form = canonical_form(text)
    assert canonical_form(form) == form
    assert value(form) == value(text)
