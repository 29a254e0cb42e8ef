"""What every request body of the local API shares."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from openline.core.encoding import control_character


class Strict(BaseModel):
    """A request body: unknown fields are refused, and so is a control character (tab, line
    feed and carriage return aside) in any string of it, however deep: ids and names in a
    body go straight to lookups, and PostgreSQL refuses NUL in text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        found = _first_control_character(value)
        if found is not None:
            raise ValueError(f"must not contain control characters, got {found}")
        return value


def _first_control_character(value: Any) -> str | None:
    pending = [value]  # a stack, not recursion: the body may nest deeply
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found = control_character(item)
            if found is not None:
                return found
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None
