"""Text that fits a terminal: wide tables split by whole columns, long sentences wrapped.

Every table ``simulator`` prints is a fixed-width block (``DataFrame.to_string``: every line the
same length, columns separated by spaces). A block wider than the terminal is cut between
columns, never inside one, into panels that each fit; the leading text columns (``scope``,
``name``, ``component``...) that say what a row is are repeated at the left of every panel, so
each panel reads on its own. Other lines wider than the terminal are wrapped at spaces, with an
indent. Nothing here knows what a table holds: it reads only the text's layout.
"""

from __future__ import annotations

import re
import shutil
import textwrap

#: a cell that is a number as the tables print them: 12, -3.5, 1.2e+03, 45.00%, 12ms, inf, nan
_NUMBER = re.compile(r"^[-+]?(\d[\d,]*\.?\d*(e[-+]?\d+)?|\.\d+|inf|nan)(%|ms|s|x)?$|^-$",
                     re.IGNORECASE)
#: at most this share of the width goes to the repeated key columns
_KEY_SHARE = 0.5


def width() -> int:
    """Columns of the terminal (``COLUMNS`` when set; 120 when output is not a terminal)."""
    return max(40, shutil.get_terminal_size((120, 24)).columns)


def fit(text: str, columns: int | None = None) -> str:
    """``text`` with no line longer than ``columns`` (default: :func:`width`), where that can be
    done by splitting tables between columns and wrapping sentences at spaces.

    A word or a single table column wider than the terminal stays whole (a number is never cut).
    """
    limit = columns or width()
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i + 1
        while j < len(lines) and len(lines[j]) == len(lines[i]) and lines[i].strip():
            j += 1
        block = lines[i:j]
        if len(block) >= 2 and len(block[0]) > limit and _spans(block):
            out.extend(_split(block, limit))
        else:
            out.extend(_wrap(line, limit) for line in block)
        i = j
    return "\n".join(out)


def _wrap(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    indent = len(line) - len(line.lstrip())
    return textwrap.fill(line.strip(), limit, initial_indent=" " * indent,
                         subsequent_indent=" " * (indent + 2), break_long_words=False,
                         break_on_hyphens=False)


def _spans(block: list[str]) -> list[tuple[int, int]]:
    """The columns of a fixed-width block: maximal runs of positions where some line has text."""
    n = len(block[0])
    blank = [all(line[p] == " " for line in block) for p in range(n)]
    spans, start = [], None
    for p in range(n + 1):
        if p < n and not blank[p]:
            start = p if start is None else start
        elif start is not None:
            spans.append((start, p))
            start = None
    return spans


def _is_key(block: list[str], span: tuple[int, int]) -> bool:
    """Whether a column names rows (text) rather than measures them (numbers)."""
    cells = [line[span[0]:span[1]].strip() for line in block[1:]]
    return any(c and not _NUMBER.match(c) for c in cells)


def _split(block: list[str], limit: int) -> list[str]:
    spans = _spans(block)
    keys: list[tuple[int, int]] = []
    for span in spans:
        wide = span[1] - (keys[0][0] if keys else span[0])
        if not _is_key(block, span) or wide > limit * _KEY_SHARE:
            break
        keys.append(span)
    rest = spans[len(keys):]
    if not rest:  # nothing but names: no split helps
        return [_wrap(line, limit) for line in block]
    key_text = [line[keys[0][0]:keys[-1][1]] if keys else "" for line in block]
    room = limit - (len(key_text[0]) + 1 if keys else 0)
    panels: list[list[tuple[int, int]]] = [[]]
    for span in rest:
        panel = panels[-1]
        # a column keeps the blanks before it (right-aligned headers and values line up)
        start = panel[0][0] if panel else span[0]
        if panel and span[1] - start + 1 > room:
            panels.append([span])
        else:
            panel.append(span)
    out: list[str] = []
    for k, panel in enumerate(panels):
        if k:
            out.append("")
        lo, hi = panel[0][0], panel[-1][1]
        for line, key in zip(block, key_text, strict=True):
            out.append(f"{key} {line[lo:hi]}".rstrip() if keys else line[lo:hi].rstrip())
    return out
