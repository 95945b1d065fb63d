"""The error tree of signoff.

Every error the core raises on purpose is a :class:`SignoffError`; the API maps each
branch to one HTTP status, and surfaces turn them into a message for the clicker.

``SignoffError``
    ``InvalidInput``      bad data from a client (422); ``field`` names what is wrong.
    ``ConfigError``       a bad setting or route file, found at start; names the key.
    ``NotFound``          no such item, or not visible to the caller (404).
    ``NotAllowed``        the actor may not do this (403).
    ``Conflict``          lost a race or repeated a finished action (409);
                          ``winner`` names the decision that won when there is one.
    ``InvalidTransition`` a state change the domain does not allow.
    ``ReleaseError``      delivering to a target failed; ``retryable`` says whether
                          another attempt may succeed.
    ``BudgetExceeded``    a route spent its daily model budget (429).
    ``Unavailable``       the server is not set up for this request, e.g. drafting without
                          a model configured (503).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class SignoffError(Exception):
    """Base of every error signoff raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SignoffError):
    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class ConfigError(SignoffError):
    code = "config_error"


class NotFound(SignoffError):
    code = "not_found"


class NotAllowed(SignoffError):
    code = "not_allowed"


class BudgetExceeded(SignoffError):
    """A route's daily model budget is spent; ``retry_after`` is seconds until it renews."""

    code = "budget_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(SignoffError):
    code = "unavailable"


@dataclass(frozen=True, slots=True)
class Winner:
    """Who decided an item first, for the message a late clicker gets."""

    actor_name: str
    actor_id: str
    surface: str
    action: str
    at: datetime


class Conflict(SignoffError):
    code = "conflict"

    def __init__(self, message: str, *, winner: Winner | None = None) -> None:
        super().__init__(message)
        self.winner = winner


class InvalidTransition(SignoffError):
    code = "invalid_transition"


class ReleaseError(SignoffError):
    code = "release_error"

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
