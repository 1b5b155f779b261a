"""A command started as the session begins, whose result a later test reads.

mypy from a fresh clone (no cache) takes about a minute of one core; begun beside the quick tests,
its minute overlaps theirs instead of adding to the run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Background:
    """`python -m <args>` in the checkout's root, its output kept in a temporary folder."""

    def __init__(self, *args: str) -> None:
        self.args = [sys.executable, "-m", *args]
        self.process: subprocess.Popen[bytes] | None = None
        self.output = Path()

    def start(self) -> None:
        if self.process is None:
            self.output = Path(tempfile.mkdtemp(prefix="background-")) / "output.txt"
            with self.output.open("wb") as output:  # the child keeps its own descriptor
                self.process = subprocess.Popen(self.args, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)

    def result(self, timeout_s: float) -> tuple[int, str]:
        """The exit status and output, starting the command now if nobody did."""
        self.start()
        assert self.process is not None
        returncode = self.process.wait(timeout_s)
        return returncode, self.output.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


MYPY = Background("mypy")
