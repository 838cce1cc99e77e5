"""A restricted arithmetic language for model answers: parse, evaluate exactly, and put in canonical form.

Owns the only code that reads countdown answers. The grammar is integers, binary `+ - * /`, unary minus and
parentheses; anything else (`**`, `^`, names, calls, decimals, `=`) is rejected with a reason. Model text is
never passed to `eval`, `exec` or a sympy parser, and the input length, nesting depth, literal size and the
magnitude of every intermediate value are bounded, so a hostile completion costs microseconds.

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-" unary | atom
    atom   := INTEGER | "(" expr ")"

`canonical()` merges the reorderings that do not change the computation, so distinct *answers* can be
counted (docs/design.md 9): sums are flattened into signed terms and products into numerator / denominator
factors, each side sorted. Hence a+b = b+a, (a+b)+c = a+(b+c), a-(b-c) = a-b+c = a+c-b, a*b = b*a,
a/(b/c) = a*c/b and a/(b*c) = a/b/c. A sum used as a factor is oriented to a positive value with its sign
moved outward, so a*(b-c) and -(a*(c-b)) also agree. Distributivity and
identities (x*1) are *not* merged: those are genuinely different expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_LENGTH = 200  # characters; a countdown answer is ~15
MAX_DEPTH = 32  # nested parentheses / unary minus chains
MAX_DIGITS = 12  # per integer literal
MAX_BITS = 256  # numerator and denominator of every intermediate value

_TOKEN = re.compile(r"\s*(?:(\d+)|(\*\*|[-+*/()])|(\S))")
_NAME = re.compile(r"\w+")


class ExpressionError(ValueError):
    """The text is not an expression of the restricted language (or cannot be evaluated); says why."""


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * /
    left: Node
    right: Node


Node = Num | Neg | BinOp


# ---------------------------------------------------------------------------------------------- parsing


def _tokenize(text: str) -> list[str]:
    tokens = []
    for number, op, other in _TOKEN.findall(text):
        if other:
            raise ExpressionError(_why_rejected(other, text))
        if op == "**":
            raise ExpressionError("power operator '**' is not allowed")
        if number and len(number) > MAX_DIGITS:
            raise ExpressionError(f"integer literal longer than {MAX_DIGITS} digits")
        tokens.append(number or op)
    return tokens


def _why_rejected(char: str, text: str) -> str:
    """A reason a reader can act on for the first character outside the language."""
    if char.isalpha() or char == "_":
        name = _NAME.match(text, text.index(char)).group(0)
        return f"names are not allowed ({name!r})"
    if char == ".":
        return "decimal numbers are not allowed"
    if char == "^":
        return "power operator '^' is not allowed"
    return f"unexpected character {char!r}"


class _Parser:
    """Recursive descent over the token list; `depth` bounds recursion on hostile input."""

    def __init__(self, tokens: list[str]):
        self.tokens, self.pos, self.depth = tokens, 0, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() != "-":
            return self.atom()
        self.take()
        with _Deeper(self):
            return Neg(self.unary())

    def atom(self) -> Node:
        token = self.take()
        if token is None:
            raise ExpressionError("unexpected end of expression")
        if token.isdigit():
            return Num(int(token))
        if token != "(":
            raise ExpressionError(f"unexpected {token!r}")
        with _Deeper(self):
            node = self.expr()
        if self.take() != ")":
            raise ExpressionError("missing ')'")
        return node


class _Deeper:
    """Context manager counting nesting depth, so '((((...' fails fast instead of hitting recursion limits."""

    def __init__(self, parser: _Parser):
        self.parser = parser

    def __enter__(self) -> None:
        self.parser.depth += 1
        if self.parser.depth > MAX_DEPTH:
            raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels")

    def __exit__(self, *exc) -> None:
        self.parser.depth -= 1


def parse_expression(text: str) -> Node:
    """The syntax tree of `text`, or ExpressionError saying why it is not in the language."""
    text = text.strip()
    if not text:
        raise ExpressionError("empty expression")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters")
    parser = _Parser(_tokenize(text))
    node = parser.expr()
    leftover = parser.peek()
    if leftover is not None:
        # "2(3+4)" or "(1+2))": say which token broke the expression
        raise ExpressionError(f"unexpected {leftover!r} after a complete expression")
    return node


# -------------------------------------------------------------------------------------------- evaluation


def _bounded(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        raise ExpressionError(f"intermediate value exceeds {MAX_BITS} bits")
    return value


def evaluate(node: Node) -> Fraction:
    """The exact value of `node`; ExpressionError on division by zero or an out-of-bounds magnitude."""
    if isinstance(node, Num):
        return Fraction(node.value)
    if isinstance(node, Neg):
        return -evaluate(node.operand)
    left, right = evaluate(node.left), evaluate(node.right)
    if node.op == "+":
        return _bounded(left + right)
    if node.op == "-":
        return _bounded(left - right)
    if node.op == "*":
        return _bounded(left * right)
    if right == 0:
        raise ExpressionError("division by zero")
    return _bounded(left / right)


def literals(node: Node) -> list[int]:
    """The integer literals of `node`, left to right (what countdown checks against the given numbers)."""
    if isinstance(node, Num):
        return [node.value]
    if isinstance(node, Neg):
        return literals(node.operand)
    return literals(node.left) + literals(node.right)


# ------------------------------------------------------------------------------------------ canonical form


def _key(text: str) -> tuple[int, str]:
    # Shorter first, then by text: numbers sort numerically among equal lengths ("2" < "10").
    return len(text), text


def _sum_terms(node: Node, sign: int) -> list[tuple[int, str]]:
    """Flatten a sum into (sign, canonical product text) terms: a-(b-c) -> +a, -b, +c."""
    if isinstance(node, BinOp) and node.op in "+-":
        return _sum_terms(node.left, sign) + _sum_terms(node.right, sign if node.op == "+" else -sign)
    if isinstance(node, Neg):
        return _sum_terms(node.operand, -sign)
    product_sign, text = _product(node)
    return [(sign * product_sign, text)]


def _render_sum(terms: list[tuple[int, str]]) -> str:
    positive = sorted((t for s, t in terms if s > 0), key=_key)
    negative = sorted((t for s, t in terms if s < 0), key=_key)
    return "+".join(positive) + "".join("-" + t for t in negative)


def _oriented_sum(node: Node) -> tuple[int, str]:
    """A sum used as a factor, oriented so its value is positive (S or -S), with the sign that moves out.

    Makes a*(b-c) and -(a*(c-b)) the same. A zero or undefined sum has no sign to go by: then the
    orientation with fewer minus terms, then the smaller text, wins.
    """
    terms = _sum_terms(node, 1)
    as_is, negated = _render_sum(terms), _render_sum([(-s, t) for s, t in terms])
    try:
        value = evaluate(node)
    except ExpressionError:
        value = Fraction(0)
    minus = sum(s < 0 for s, _ in terms)
    if value < 0 or (value == 0 and (len(terms) - minus, _key(negated)) < (minus, _key(as_is))):
        return -1, negated
    return 1, as_is


def _factors(node: Node, inverted: bool) -> tuple[int, list[tuple[bool, str]]]:
    """Flatten a product into (sign, [(in_denominator, factor text)]): a/(b/c) -> a, c over b."""
    if isinstance(node, BinOp) and node.op in "*/":
        left_sign, left = _factors(node.left, inverted)
        right_sign, right = _factors(node.right, inverted != (node.op == "/"))
        return left_sign * right_sign, left + right
    if isinstance(node, Neg):
        sign, factors = _factors(node.operand, inverted)
        return -sign, factors
    if isinstance(node, Num):
        return 1, [(inverted, str(node.value))]
    sign, text = _oriented_sum(node)
    return sign, [(inverted, f"({text})")]


def _product(node: Node) -> tuple[int, str]:
    sign, factors = _factors(node, False)
    numerator = sorted((t for inverted, t in factors if not inverted), key=_key)
    denominator = sorted((t for inverted, t in factors if inverted), key=_key)
    # The leftmost factor of any product is never inverted, so the numerator is never empty.
    return sign, "*".join(numerator) + "".join("/" + t for t in denominator)


def canonical(node: Node) -> str:
    """The canonical text of `node`: equal for reorderings of the same computation, itself parseable to
    an expression with the same value (so `canonical(parse_expression(canonical(x))) == canonical(x)`)."""
    return _render_sum(_sum_terms(node, 1))


def canonical_form(text: str) -> str:
    """`canonical(parse_expression(text))`; raises ExpressionError like `parse_expression`."""
    return canonical(parse_expression(text))
