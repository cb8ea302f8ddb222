"""Settings a chosen mode ignores are refused, never silently dropped.

A model validator lists, for each mode-specific setting, whether the chosen mode uses it; a
setting given explicitly with a value other than its default, in a mode that does not use it,
is an error naming the modes that do. A value equal to the default is accepted: experiments
re-parse scenarios dumped with every field spelled out.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel


def is_set(model: BaseModel, name: str) -> bool:
    """Whether ``name`` was given explicitly with a value other than its default."""
    if name not in model.model_fields_set:
        return False
    default = type(model).model_fields[name].get_default(call_default_factory=True)
    return bool(getattr(model, name) != default)


def refuse_ignored(model: BaseModel, rules: Iterable[tuple[str, bool, str]]) -> None:
    """Raise ``ValueError`` for the first setting the chosen mode ignores.

    Parameters
    ----------
    model
        The validated model.
    rules
        ``(name, used, why)``: the setting ``name``, whether the chosen mode uses it, and the
        end of the message saying when it applies (``"by backoff decorrelated; it applies to
        constant and exponential backoff"``); the message starts with the name, so the error
        points at that key.
    """
    for name, used, why in rules:
        if not used and is_set(model, name):
            raise ValueError(f"{name} is ignored {why}")
