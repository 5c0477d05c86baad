"""TLS for https:// endpoints: the context and the connection.

A node serving https (runvault serve --tls-cert/--tls-key/--tls-ca) has a
certificate of its cluster's CA; the SDK verifies it against ca_file (or
$RUNVAULT_TLS_CA; without either, the system's CAs) and checks the host
name, as ssl.create_default_context does. Client certificates are
optional for clients and not sent."""

import http.client
import os
import ssl
import urllib.parse


def scheme(endpoint):
    """'http' or 'https' for a comma-separated endpoint list; mixing the
    two raises ValueError. Parts without a scheme are http."""
    schemes = set()
    for part in (endpoint or "").split(","):
        part = part.strip()
        if part:
            schemes.add(urllib.parse.urlsplit(part).scheme
                        if "://" in part else "http")
    if len(schemes) > 1:
        raise ValueError("endpoints mix http:// and https://: %r" % endpoint)
    return schemes.pop() if schemes else "http"


def context(ca_file=None):
    """An ssl.SSLContext verifying servers against ca_file, else
    $RUNVAULT_TLS_CA, else the system's CAs."""
    ca_file = ca_file or os.environ.get("RUNVAULT_TLS_CA") or None
    return ssl.create_default_context(cafile=ca_file)


def for_endpoint(endpoint, ca_file=None):
    """The context an endpoint list needs: None for http, else context()."""
    return context(ca_file) if scheme(endpoint) == "https" else None


def connection(host, port, timeout, tls):
    """An http.client connection: HTTPS with context tls, or plain HTTP when
    tls is None."""
    if tls is None:
        return http.client.HTTPConnection(host, port, timeout=timeout)
    return http.client.HTTPSConnection(host, port, timeout=timeout,
                                       context=tls)
