import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not (REALDATA / "MANIFEST.json").is_file():
        pytest.skip("../shared/realdata is not present")
    return REALDATA


@pytest.fixture
def kill_9_when() -> Callable[..., None]:
    """`kill_9_when(command, ready, timeout=60, **popen)`: runs `command` and sends it SIGKILL as soon as `ready()`
    holds, as a crash mid-run would; fails if the command ends first or `ready()` does not hold within `timeout` s.
    stderr goes to a file (a pipe nobody reads could fill and stall the command) and is shown on failure."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs POSIX signals")

    def run(command: list[str], ready: Callable[[], bool], timeout: float = 60, **popen) -> None:
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, **popen)
            deadline = time.monotonic() + timeout
            try:
                while not ready():
                    if process.poll() is not None:
                        stderr.seek(0)
                        pytest.fail(f"finished before the kill: {stderr.read().decode()[-2000:]}")
                    assert time.monotonic() < deadline, "the command made no progress"
                    time.sleep(0.01)
                os.kill(process.pid, signal.SIGKILL)
            finally:
                if process.poll() is None:
                    process.kill()  # a failed wait above must not leave it running
                process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL

    return run
