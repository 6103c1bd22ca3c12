"""Importing the matcher turns numpy's transparent huge pages off (see matcher/__init__.py),
whether numpy was imported before it or not, unless the operator chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHECK = "import numpy, matcher; print(numpy._core.multiarray._get_madvise_hugepage())"


@pytest.mark.parametrize(
    ("code", "setting", "expected"),
    [
        (CHECK, None, "False"),
        (CHECK.replace("import numpy, matcher", "import matcher, numpy"), None, "False"),
        (CHECK, "1", "True"),
    ],
    ids=["numpy-first", "matcher-first", "operator-says-yes"],
)
def test_huge_pages_are_off_unless_asked_for(code: str, setting: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if setting is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = setting
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected
