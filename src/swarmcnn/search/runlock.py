"""A run folder's lock: one search (or resume) of a run at a time."""

from __future__ import annotations

import os
from pathlib import Path

from swarmcnn.errors import SwarmCNNError, is_disk_full

LOCK_FILE = "journal.lock"


class RunLock:
    """This process's hold on a run folder: an flock on journal.lock, whose text is the holder's pid.

    Two searches of one run would both write its journal and best/; the second is refused instead. The OS
    releases the lock when the process ends, however it ends (kill -9 included), so a lock is never stale.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self.fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # Windows: no flock, no lock
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self.fd, 32).decode(errors="replace").strip()
            self.release()
            raise SwarmCNNError(
                f"run folder '{run_dir}' is in use by process {holder or '(unknown)'}; wait for it to end"
            ) from None
        try:
            os.ftruncate(self.fd, 0)
            os.write(self.fd, f"{os.getpid()}\n".encode())
        except OSError as error:  # a full disk: the one line names the lock file and says so
            self.release()
            why = "no space left on device (the disk is full)" if is_disk_full(error) else error.strerror
            raise SwarmCNNError(f"cannot write the lock of run folder '{run_dir}' ('{self.path}'): {why}") from None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None
