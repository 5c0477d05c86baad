"""Exceptions raised by the SDK."""


class RunvaultError(Exception):
    """A request the SDK could not carry out."""

    def __init__(self, message, status=0, error_code=""):
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class RunNotFoundError(RunvaultError):
    """resume='must' for a run that does not exist (HTTP 404)."""


class RunExistsError(RunvaultError):
    """resume='never' for a run id that already exists (HTTP 409)."""


class SpoolBusyError(RunvaultError):
    """Another Run (in this or another process) holds the run's spool."""


class AuthError(RunvaultError):
    """The cluster did not accept the token (HTTP 401): none was given
    (token= or $RUNVAULT_TOKEN), or it is unknown, expired or revoked. Never
    retried; the message never holds the token."""


class PermissionDenied(AuthError):
    """The token is valid but its role or team may not do this (HTTP 403).
    Never retried."""
