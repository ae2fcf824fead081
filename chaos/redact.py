"""Secrets kept out of what a run writes: a URL's password and secret-looking query values are
masked wherever a URL becomes a name or a message (probe names, errors), so they never reach
the summary, Allure, JUnit, the progress stream or a log."""

from __future__ import annotations

import re
import urllib.parse

MASK = "***"
# query parameters that carry credentials, by the names they usually have
SECRET_PARAM = re.compile(
    r"(token|secret|password|passwd|pwd|api[-_]?key|access[-_]?key|auth|signature|sig)", re.I
)


def redact_url(url: str) -> str:
    """``url`` with its password and any secret-looking query value replaced by ``***``;
    anything that does not parse as a URL is returned unchanged."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = "&".join(
        f"{k}={MASK}" if SECRET_PARAM.search(k) else (f"{k}={v}" if sep else k)
        for k, sep, v in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
