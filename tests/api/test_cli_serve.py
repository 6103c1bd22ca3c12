"""`maillage serve` / `maillage demo --port P`: the app is built with the address it
listens on, so that the links it e-mails (sign-in, digests) point there."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn

import api.app
from api.cli import _serve
from api.kit.settings import Settings


def test_the_served_app_links_to_the_port_it_listens_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    built: list[Settings] = []
    monkeypatch.setattr(api.app, "create_app", lambda settings, **kw: built.append(settings))
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    _serve(Settings(data_dir=tmp_path, port=8000), "127.0.0.1", 8765)
    assert built[0].base_url == "http://127.0.0.1:8765"
    public = Settings(data_dir=tmp_path, public_url="https://maillage.example.fr")
    _serve(public, "0.0.0.0", 8765)
    assert built[1].base_url == "https://maillage.example.fr"
