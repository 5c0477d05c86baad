"""Identifiers made on the client: run ids and idempotency client ids."""

import os
import secrets
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_run_id(now_ms=None):
    """A 26-character ULID-style id: Crockford base32 of a 48-bit
    millisecond time followed by 80 random bits (sorts by creation time)."""
    ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    n = ((ms & ((1 << 48) - 1)) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(n >> (5 * (25 - i))) & 31] for i in range(26))


def new_client_id():
    """A random nonzero 63-bit integer (the idempotency client id)."""
    while True:
        c = secrets.randbits(63)
        if c != 0:
            return c
