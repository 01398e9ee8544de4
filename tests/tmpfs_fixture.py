"""A real, tiny tmpfs mounted for one test: a disk that fills up after 64 KiB.

Needs root (or CAP_SYS_ADMIN). Locally a failed mount skips the test; under
``CI=true`` it fails it, since CI must prove the full-disk guarantees.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import missing_component

TINY_DISK_SIZE = "64k"


def _mount(target: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on its own 64 KiB tmpfs, unmounted after the test."""
    mount_point = tmp_path / "tiny-disk"
    mount_point.mkdir()
    try:
        mounted = _mount(mount_point, f"size={TINY_DISK_SIZE}", "mode=700")
    except FileNotFoundError:
        missing_component("the mount command is not installed")
    if mounted.returncode != 0:
        missing_component(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file; return the file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while out.write(b"\0" * 4096):
                pass
        except OSError:
            pass
    return filler


def remount_read_only(disk: Path) -> None:
    """Make ``disk`` read-only in place (EROFS for every write)."""
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
