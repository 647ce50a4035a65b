"""Errors with a meaning for the user or the dispatcher."""


class UserFacingError(Exception):
    """Shown to the user as it is (already in their language); nothing is logged as a bug."""


class RetryLater(Exception):
    """A transient failure: the event goes back to the queue and is tried again."""
