"""Output directories: when one may be replaced by a run's or an experiment's results."""

from __future__ import annotations

from pathlib import Path


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
