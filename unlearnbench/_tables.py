"""Reading a file's tables (a suite's TOML, a ``plots.json``) so that every
mistake names its key: the error type and the typed look-up that suite files
and plot requests share."""

from __future__ import annotations

from typing import Any

from unlearnbench.specs import UnlearnbenchError


class KeyedError(UnlearnbenchError, ValueError):
    """A mistake in a table. ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


def typed(
    data: dict[str, Any],
    key: str,
    kind: type,
    default: Any,
    prefix: str,
    error: type[KeyedError] = KeyedError,
) -> Any:
    """``data[key]`` (``default`` when absent), an ``error`` naming ``prefix + key``
    when it is not a ``kind``."""
    value = data.get(key, default)
    if not isinstance(value, kind):
        raise error(
            f"{prefix}{key}", f"expected {kind.__name__}, got {type(value).__name__} ({value!r})"
        )
    return value
