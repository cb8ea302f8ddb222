"""Output directories: when one may be replaced by a run's or an experiment's results, and how
it is replaced (whole or not at all)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Infix of the temporary sibling a directory is written to before it replaces the target.
PARTIAL = ".partial-"


def out_problem(out: Path) -> str | None:
    """Why ``out`` must not be used as an output directory (it is replaced whole), or None."""
    if not out.exists():
        return None
    if not out.is_dir():
        return "exists and is not a directory; refusing to replace it"
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        return ("is a non-empty directory that holds no previous results (no manifest.json); "
                "refusing to replace it, choose a new directory")
    return None


def report_problem(path: Path) -> str | None:
    """Why an HTML report cannot be written to ``path``, or None (checked before a run)."""
    if path.is_dir():
        return "is a directory; give a file name (report.html)"
    if path.suffix.lower() not in (".html", ".htm"):
        return "the report is an HTML file: give a name ending in .html"
    return None


@contextlib.contextmanager
def replacing(directory: str | Path) -> Iterator[Path]:
    """Write a directory whole or not at all: yield a temporary sibling to fill, which then
    replaces ``directory``; on any exception the sibling is removed and ``directory`` is left
    as it was.

    The directory gets the permissions of one made by ``mkdir`` (the user's umask), not the
    0700 of a temporary directory. Siblings left by writes that were killed (``SIGKILL``, a
    power cut: no clean-up ran) are removed first, when the process that made them is gone.
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}{PARTIAL}"
    _remove_stale(target.parent, prefix)
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-old-", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale(parent: Path, prefix: str) -> None:
    """Remove ``parent/prefix<pid>-*`` siblings whose writing process no longer runs."""
    for path in parent.glob(f"{prefix}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
