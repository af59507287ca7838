"""Write one section of BENCHMARKS.md: the benchmark's own table, with date, machine and command."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
HEADER = "# Benchmarks\n\nEvery table here is written by the command it names; nothing is typed by hand.\n\n"


def boot() -> str:
    """This machine's boot, in 8 hex digits: which sections and results were measured on one machine.

    The host name does not tell: every machine these benchmarks have run on was called ``vm``, and
    their speeds differed by about two times. A boot id is new at each boot, so a reboot of one
    machine reads as another machine, which errs on the safe side.
    """
    path = Path("/proc/sys/kernel/random/boot_id")
    return path.read_text(encoding="ascii").strip().replace("-", "")[:8] if path.exists() else "unknown"


def provenance(command: str) -> str:
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} (boot {boot()}, {platform.machine()}, "
        f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, "
        f"Python {platform.python_version()}, redis-server {redis[2] if len(redis) > 2 else '?'}) by `{command}`."
    )


RESULTS = ROOT / "benchmarks" / "results"


def write_result(name: str, values: dict[str, Any], command: str) -> None:
    """The benchmark's figures for benchmarks/sizing.py, beside the table it wrote."""
    RESULTS.mkdir(exist_ok=True)
    record = {"command": command, "measured": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "boot": boot(), **values}
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def read_result(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run the benchmark that writes it first (see BENCHMARKS.md)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def boots(sources: dict[str, dict[str, Any]]) -> str:
    """Each source's machine and time, for a reader: ``name boot X (measured)``."""
    return ", ".join(f"{name} boot {r.get('boot', 'unknown')} ({r['measured']})" for name, r in sources.items())


def one_machine(sources: dict[str, dict[str, Any]]) -> str | None:
    """The boot all ``sources`` were measured on, or None if they differ or one does not say
    (results written before they recorded it)."""
    found = {r.get("boot", "unknown") for r in sources.values()}
    return next(iter(found)) if len(found) == 1 and "unknown" not in found else None


def require_one_machine(user: str, sources: dict[str, dict[str, Any]], mixed_allowed: bool) -> str | None:
    """:func:`one_machine` of ``sources``; when they differ and ``mixed_allowed`` (--mixed-machines) is
    not given, exit naming each source's machine and the commands to run again here."""
    machine = one_machine(sources)
    if machine is None and not mixed_allowed:
        here = boot()
        again = "; ".join(
            f"`{r['command']}`" for r in sources.values() if "command" in r and r.get("boot", "unknown") != here
        )
        raise SystemExit(
            f"{user} would build on figures from different machines: {boots(sources)}. Machines here have"
            f" differed by about two times in speed. Run again on this machine (boot {here}): {again}; or pass"
            " --mixed-machines to go on anyway (the section then says so)."
        )
    return machine


def write_section(title: str, body: list[str]) -> None:
    """Replace (or append) the section headed ``## title`` and echo it."""
    heading = f"## {title}"
    section = "\n".join([heading, "", *body, ""])
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    start = text.find(heading + "\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    sys.stdout.write(section)
