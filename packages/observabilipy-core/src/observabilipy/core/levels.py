"""Log levels: five canonical names, case-insensitive input, ``WARN`` as an alias.

Every part of observabilipy (helpers, the logging handler, storage filters,
retention, the HTTP API and the CLI) normalises levels through this module, so
``warn``, ``Warn`` and ``WARNING`` always mean the same thing.

>>> normalize_level("warn")
'WARNING'
>>> levels_at_or_above("error")
('ERROR', 'CRITICAL')
>>> severity("info") < severity("Error")
True
"""

from __future__ import annotations

from typing import Final

from observabilipy.core.errors import ValidationError

DEBUG: Final = "DEBUG"
INFO: Final = "INFO"
WARNING: Final = "WARNING"
ERROR: Final = "ERROR"
CRITICAL: Final = "CRITICAL"

#: Canonical levels, least severe first.
LEVELS: Final[tuple[str, ...]] = (DEBUG, INFO, WARNING, ERROR, CRITICAL)

# Severities match the standard library's logging numbers so the two line up.
_SEVERITY: Final[dict[str, int]] = {DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50}

# Every accepted spelling maps straight to its canonical name: one dict lookup on
# the common path, the slower lower()/upper() only for unusual casing.
_ALIASES: dict[str, str] = {}
for _name in LEVELS:
    _ALIASES[_name] = _name
    _ALIASES[_name.lower()] = _name
    _ALIASES[_name.capitalize()] = _name
_ALIASES.update({"WARN": WARNING, "warn": WARNING, "Warn": WARNING, "FATAL": CRITICAL})


def normalize_level(level: object, *, field: str = "level") -> str:
    """Return the canonical name of ``level``; raise ValidationError if unknown.

    Accepts any casing, ``WARN`` for ``WARNING``, ``FATAL`` for ``CRITICAL`` (as
    the standard library does) and the standard library's numeric levels.

    >>> normalize_level("Critical"), normalize_level(40)
    ('CRITICAL', 'ERROR')
    >>> normalize_level("verbose")
    Traceback (most recent call last):
    ...
    observabilipy.core.errors.ValidationError: level: unknown level 'verbose'; expected one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL
    """
    if isinstance(level, str):
        canonical = _ALIASES.get(level)
        if canonical is not None:
            return canonical
        canonical = _ALIASES.get(level.strip().upper())
        if canonical is not None:
            return canonical
    elif isinstance(level, int) and not isinstance(level, bool):
        for name in reversed(LEVELS):
            if level >= _SEVERITY[name]:
                return name
        return DEBUG
    raise ValidationError(
        field,
        f"unknown level {level!r}; expected one of DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL",
    )


def severity(level: object) -> int:
    """Numeric severity of ``level`` (10 for DEBUG up to 50 for CRITICAL).

    >>> severity("warn")
    30
    """
    return _SEVERITY[normalize_level(level)]


def levels_at_or_above(level: object) -> tuple[str, ...]:
    """The canonical levels as severe as ``level`` or more (what ``min_level`` selects).

    >>> levels_at_or_above("WARN")
    ('WARNING', 'ERROR', 'CRITICAL')
    """
    floor = severity(level)
    return tuple(name for name in LEVELS if _SEVERITY[name] >= floor)
