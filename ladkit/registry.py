"""Name -> object registries (objectives, divergences, advantage estimators, bandit shapes).

One small class so every lookup fails the same way: an `UnknownNameError` listing the valid names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ladkit.errors import LadkitError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from snake_case names to entries, with helpful errors on unknown names."""

    def __init__(self, kind: str):
        self.kind = kind  # e.g. "divergence": used in error messages
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@REGISTRY.register("name")` adds the decorated object under `name`."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise LadkitError(f"{self.kind} {name!r} is registered twice; pick another name")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
