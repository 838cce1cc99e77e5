"""The math-verify worker process: reads one JSON request a line on stdin, answers one JSON line on stdout.

Run as a script by `mathverify.py` (never imported by the trainer), so it imports nothing from ladkit and
needs only math-verify. Requests are {"gold": str, "answer": str}; answers are {"status": "correct" | "wrong"
| "parse_error" | "gold_parse_error" | "error", "detail": str}. The first line it writes is {"ready": true},
after the grammar has been warmed up, so the parent's per-item clock never includes start-up.

math-verify's own timeouts are turned off (they use SIGALRM); the parent enforces a wall-clock bound per item
and kills this process when it is exceeded.
"""

import json
import os
import sys


def _wrapped(text: str) -> str:
    # \boxed{...} lets math-verify read both LaTeX (\frac12) and plain text (1/2, 0.5) answers; unbalanced
    # braces would break the box, so such text goes in $...$ instead.
    depth = 0
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            break
    return "\\boxed{" + text + "}" if depth == 0 else "$" + text + "$"


def check(gold: str, answer: str) -> dict:
    from math_verify import parse, verify

    predicted = parse(_wrapped(answer), parsing_timeout=None)
    if not predicted:
        return {"status": "parse_error", "detail": ""}
    expected = parse(_wrapped(gold), parsing_timeout=None)
    if not expected:
        return {"status": "gold_parse_error", "detail": gold[:100]}
    correct = verify(expected, predicted, timeout_seconds=None)
    return {"status": "correct" if correct else "wrong", "detail": ""}


def _safe_check(request: dict) -> dict:
    try:
        return check(request["gold"], request["answer"])
    except Exception as error:  # a verifier bug on one answer must not end the worker
        return {"status": "error", "detail": f"{type(error).__name__}: {error}"[:200]}


def main() -> None:
    channel = os.fdopen(os.dup(1), "w")  # the protocol's own copy of stdout ...
    os.dup2(2, 1)  # ... so stray prints from sympy/antlr land on stderr instead of corrupting it
    import logging

    logging.disable(logging.WARNING)  # math-verify warns on every call that its timeout is off
    check("1", "1/2")  # load the grammars now, not inside the first timed request

    def send(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    send({"ready": True})
    for line in sys.stdin:  # EOF (parent closed the pipe or died) ends the worker
        send(_safe_check(json.loads(line)))


if __name__ == "__main__":
    # Run as a script, this folder is sys.path[0]; it holds `datasets.py`, which would shadow the real package.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    main()
