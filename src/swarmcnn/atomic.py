"""Saving a folder whole or not at all: written beside its place, then renamed into it.

A model directory (and a search's best/) is replaced by two renames, so that a kill or a full disk at any
moment leaves the previous folder or the new one, never a mix; what a killed save leaves beside the folder is
put back or removed by the next save, and read by `restorable` meanwhile.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from swarmcnn.errors import CheckpointError, is_disk_full


def replace_folder(target: Path, write: Callable[[Path], None]) -> None:
    """Have `write` fill a staging folder beside target, then swap it into place.

    A kill or an error at any moment leaves either the previous folder or the new one complete, never a mix:
    the old folder is renamed away, the new one renamed in (renames within a folder are atomic), the old
    one deleted. Leftovers of a killed save are cleaned up by the next save to the same target. A full disk ends
    in one CheckpointError that names the target and says so.
    """
    target = target.resolve()
    if not target.name:
        raise CheckpointError(f"cannot save a model as '{target}': choose a folder inside it")
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"cannot save a model as '{target}': it exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(target)
    staging, old = _beside(target, "staging", os.getpid()), _beside(target, "old", os.getpid())
    shutil.rmtree(staging, ignore_errors=True)
    existed = target.exists()
    try:
        staging.mkdir()
        write(staging)
        for path in staging.iterdir():
            _fsync(path)  # the contents reach the disk before the rename makes them the model
        if target.exists():
            os.rename(target, old)
        os.rename(staging, target)
    except BaseException as error:
        if old.exists() and not target.exists():
            os.rename(old, target)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, Exception) and is_disk_full(error):
            raise _disk_full(target, error, staging, existed) from None
        raise
    _fsync(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _beside(target: Path, kind: str, pid: int) -> Path:
    return target.parent / f".{target.name}.{kind}.{pid}"


def _disk_full(target: Path, error: Exception, staging: Path, existed: bool) -> CheckpointError:
    """The one line of a save that found the disk full: the target, the file it was writing, and what is kept."""
    name = getattr(error, "filename", None)
    writing = ""
    if isinstance(name, str):
        shown = Path(name).relative_to(staging) if Path(name).is_relative_to(staging) else name
        writing = f" while writing {shown}"
    kept = "the model already there is unchanged" if existed else "nothing was saved"
    return CheckpointError(
        f"cannot save the model to '{target}': no space left on device (the disk is full){writing}; {kept}"
    )


def restorable(target: str | Path) -> Path | None:
    """The previous folder that a save of target, killed between its two renames, left beside it (target itself
    missing, a '.NAME.old.PID' of a process that is gone): the next save puts it back, `load` reads it; None
    where there is none."""
    target = Path(os.path.abspath(target))
    if target.exists() or not target.parent.is_dir() or not target.name:
        return None
    pattern = re.compile(rf"\.{re.escape(target.name)}\.old\.(\d+)")
    for path in sorted(target.parent.iterdir()):
        match = pattern.fullmatch(path.name)
        if match and not _alive(int(match[1])) and path.is_dir():
            return path
    return None


def _clean_leftovers(target: Path) -> None:
    """Remove what a killed save of target left; put the previous folder back if the kill fell between renames."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(staging|old)\.(\d+)")
    for path in target.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if not match or _alive(int(match[2])):
            continue
        if match[1] == "old" and not target.exists():
            os.rename(path, target)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier save of this process that failed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
