"""Errors with a meaning for the user or the dispatcher."""


class UserFacingError(Exception):
    """Shown to the user as it is (already in their language); nothing is logged as a bug."""
