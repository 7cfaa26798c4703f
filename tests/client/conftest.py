"""Fixtures shared by the client tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from clikit import Result

from nexotc_client.cli import run


@pytest.fixture
def nx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`nexotc` run in-process with its own home (`nx.home`): the exit code and captured output."""
    home = tmp_path / "home"

    def call(*argv: str) -> Result:
        code = run([*argv, "--home", str(home)])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    call.home = home  # type: ignore[attr-defined]
    return call
