"""Shared fixture of the sandbox tests: the fresh uids a test's executions used, checked for leftovers."""

from __future__ import annotations

import pytest

from ladkit.sandbox import processes_of, runner


@pytest.fixture
def used_uids(monkeypatch):
    """Every uid the sandbox hands out during the test, to check afterwards that none has a process left."""
    claimed = []
    original = runner._claim_uid

    def claim():
        uid = original()
        claimed.append(uid)
        return uid

    monkeypatch.setattr(runner, "_claim_uid", claim)
    yield claimed
    for uid in claimed:
        assert processes_of(uid) == [], f"processes of sandbox uid {uid} survived the call"
