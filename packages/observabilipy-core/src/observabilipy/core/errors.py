"""The exceptions observabilipy raises.

Every error is an :class:`ObservabilityError`, so ``except ObservabilityError``
catches anything this library refuses.  Bad values are also :class:`ValueError`
so code written for the standard library keeps working.

>>> from observabilipy.core import MetricSample
>>> try:
...     MetricSample(name="bad name", timestamp=0.0, value=1.0)
... except ValidationError as exc:
...     print(exc.field)
name
"""

from __future__ import annotations


class ObservabilityError(Exception):
    """Base class of every error raised by observabilipy."""


class ValidationError(ObservabilityError, ValueError):
    """A value was refused; ``field`` names what was wrong.

    >>> str(ValidationError("limit", "must be >= 0, got -1"))
    'limit: must be >= 0, got -1'
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class ConfigurationError(ObservabilityError, ValueError):
    """A setting (policy, interval, registry definition) cannot work as given."""
