"""Coverage-guided fuzzing (atheris, libFuzzer) of every adapter and the validator.

The first byte picks the adapter, the rest is the message; each input must become canonical
events or refusals with a reason (tests.streams.test_hostile_input.check), never an exception
and never a hang. Run directly for a long session:

    .venv/bin/python -m tests.fuzz.fuzz_inputs -max_total_time=600 -timeout=5 CORPUS_DIR

``tests/fuzz/test_fuzz_inputs.py`` runs it briefly in the suite.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["streams.adapters", "detectors.validation", "detectors.text"]):
    from streams.adapters import ADAPTERS
    from tests.streams.test_hostile_input import check

NAMES = sorted(ADAPTERS)


def one_input(data: bytes) -> None:
    if not data:
        return
    check(NAMES[data[0] % len(NAMES)], data[1:])


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
