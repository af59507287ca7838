"""A bounded atheris run in the suite: the shipped samples as seeds, a fixed number of inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.adapters import ADAPTERS
from tests.streams.test_hostile_input import SAMPLES

pytest.importorskip("atheris", reason="atheris does not install on this platform; hypothesis still covers this")
HERE = Path(__file__).parent


def test_coverage_guided_fuzzing_finds_no_crash_and_no_hang(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = sorted(ADAPTERS)
    for name, sample in SAMPLES.items():
        (corpus / name).write_bytes(bytes([names.index(name)]) + sample)
    run = subprocess.run(  # noqa: S603 - our own harness
        [
            sys.executable,
            "-m",
            "tests.fuzz.fuzz_inputs",
            "-runs=300000",
            "-max_len=8192",
            "-timeout=5",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE.parents[1],
    )
    report = run.stderr[-3000:]
    assert run.returncode == 0, f"atheris found an input that crashes or hangs:\n{report}"
    assert "Done 300000 runs" in run.stderr, report
