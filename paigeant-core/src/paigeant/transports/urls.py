"""Broker URLs in logs and errors: credentials never shown."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["redact_url"]

#: Query parameters that carry credentials (redis-py takes ``?password=``, NATS ``?token=``).
_SECRET_PARAMETERS = frozenset(
    {"password", "pass", "passwd", "pwd", "token", "auth", "secret", "user", "username"}
)


def redact_url(url: str) -> str:
    """``url`` with its user name, password or token replaced by ``***``, for logs and errors.

    The user name goes too (some brokers take a token in its place, ``nats://TOKEN@host``), and
    so do credentials passed as query parameters (``?password=...``).
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]  # the host (and port) as written
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in _SECRET_PARAMETERS for name, _ in pairs):
            query = urlencode(
                [(n, "***" if n.lower() in _SECRET_PARAMETERS else v) for n, v in pairs],
                safe="*",
            )
    redacted = url
    if query != parts.query:  # replaced in place: the URL keeps its form (``unix:///``)
        redacted = redacted.replace(f"?{parts.query}", f"?{query}", 1)
    if netloc != parts.netloc:
        redacted = redacted.replace(f"//{parts.netloc}", f"//{netloc}", 1)
    return redacted
