"""The caller's token: token= or $RUNVAULT_TOKEN, checked before use.

A token is "rvt_" + 16 lower-case hex digits (its id) + "_" + 64 lower-case
hex digits (the secret). It is sent as "Authorization: Bearer <token>" on
every request and nowhere else: never logged, never put in an exception's
message, never written to the offline spool (a spool is replayed with the
token given when it is replayed).
"""

import os
import re

from ._errors import AuthError, PermissionDenied, RunvaultError

_TOKEN_RE = re.compile(r"rvt_[0-9a-f]{16}_[0-9a-f]{64}")
FORM = "rvt_<16 hex digits>_<64 hex digits>"


def resolve_token(token=None):
    """token if given, else $RUNVAULT_TOKEN (surrounding white space
    stripped), else None. Raises ValueError, naming the source but not the
    value, when it is not a token."""
    source = "token="
    if token is None:
        token = os.environ.get("RUNVAULT_TOKEN", "").strip()
        if not token:
            return None
        source = "$RUNVAULT_TOKEN"
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise ValueError("%s does not hold a runvault token (%s)"
                         % (source, FORM))
    return token


def auth_headers(token):
    """The headers that carry token (none for None)."""
    return {"Authorization": "Bearer " + token} if token else {}


def is_auth_status(status):
    return status in (401, 403)


def auth_error(what, resp):
    """The exception for a 401 or 403 answer (resp: a transport Response):
    AuthError or PermissionDenied, with the server's error code."""
    code = resp.doc.get("error_code", "") if isinstance(resp.doc, dict) \
        else ""
    if resp.status == 403:
        return PermissionDenied("%s: permission denied: %s"
                                % (what, resp.describe()), resp.status, code)
    if resp.status == 401:
        return AuthError("%s: not authenticated (pass token= or set "
                         "RUNVAULT_TOKEN): %s" % (what, resp.describe()),
                         resp.status, code)
    return RunvaultError("%s: %s" % (what, resp.describe()), resp.status, code)
