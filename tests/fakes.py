"""Stand-ins for the dense models, for tests that must not load one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matcher.encoders import PASSAGE, FloatMatrix, Role


def unit_rows(rows: np.ndarray) -> FloatMatrix:
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


class FakeEncoder:
    """Seeded random unit vectors per (role, text), or per text when role-blind."""

    def __init__(self, name: str, dimension: int, *, role_aware: bool) -> None:
        self._name, self._dimension, self._role_aware = name, dimension, role_aware
        self.calls: list[tuple[Role, list[str]]] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def role_aware(self) -> bool:
        return self._role_aware

    def encode(
        self, texts: Sequence[str], *, role: Role = PASSAGE, show_progress_bar: bool = False
    ) -> FloatMatrix:
        self.calls.append((role, list(texts)))
        rows = [
            np.random.default_rng(
                abs(hash((self._name, role if self._role_aware else "", t))) % 2**32
            ).normal(size=self._dimension)
            for t in texts
        ]
        return unit_rows(np.array(rows).reshape(len(texts), self._dimension))
