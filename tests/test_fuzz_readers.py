"""The readers' fuzz test (``tests/fuzz_readers.py``), bounded, in a capped process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent / "fuzz_readers.py"


def test_every_mutated_file_loads_or_raises_serialization_error() -> None:
    # Reproducible examples (derandomized) in a process capped at 2 GiB of
    # address space, each example capped at 20 s; a crash or hang fails too.
    out = subprocess.run(
        [sys.executable, str(FUZZ), "--examples", "1000", "--memory-gb", "2", "--seconds", "20"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    assert "1000 examples, every one loaded or raised SerializationError" in out.stdout
