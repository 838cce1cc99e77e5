"""Fixtures for integration tests: a tiny random Llama with the char tokenizer (built once per session)."""

import pytest


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    from ladkit.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama", hidden=128, heads=2, layers=2)
