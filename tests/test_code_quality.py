"""Strict static checks run with the suite: ruff's lint and format over the project, mypy --strict over detectors/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_would_change_nothing() -> None:
    # Lint passes on code ruff would still reformat; without this, drift lands unnoticed.
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr + "\nrun: .venv/bin/python -m ruff format ."


def test_mypy_strict_on_the_core() -> None:
    result = run("mypy", "detectors")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_imports_no_framework() -> None:
    forbidden = ("faust", "aiokafka", "prometheus_client", "streams")
    for path in (ROOT / "detectors").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                assert words[1].split(".")[0] not in forbidden, f"{path.name}: {line}"
