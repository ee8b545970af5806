"""What the test workers install once waits for whoever installs it: tests/locks.py across processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from tests.locks import held, installing

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys
from pathlib import Path
from tests.locks import held
with held(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()  # until told to let go
"""


def test_a_lock_another_process_holds_is_waited_for_and_then_had(tmp_path: Path) -> None:
    lock_file = tmp_path / "package.lock"  # the file installing(<folder>) locks: <folder>.lock
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_file)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        had = threading.Event()

        def take() -> None:
            with installing(tmp_path / "package"):
                had.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert not had.wait(0.5)  # the other process holds it
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert had.wait(30)  # let go: had at once
        taker.join(5)
    finally:
        holder.kill()
        holder.wait()
    with held(lock_file):  # and free again
        pass
