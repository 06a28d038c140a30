"""What ``classmood app`` serves: the Streamlit app (``main.py``) behind the network rules of ``netguard``.

``streamlit run`` finds the ``st.App`` below and serves it with uvicorn (Streamlit's documented way to
add middleware). In front of every route, Streamlit's WebSocket included:

- a request whose ``Host`` is not one of this app's names, or whose ``Origin`` is another site, gets
  403 (DNS rebinding: a page on ``evil.example`` whose name resolves to 127.0.0.1 would otherwise
  drive a localhost app that has no password);
- every response carries a Content-Security-Policy (scripts from this server only, plus the hashes of
  Streamlit's own inline scripts, computed from the installed ``index.html``), and may be framed by
  this app only (its components are same-origin iframes), never by another site.

Names: localhost and this machine's names, any IP literal, the host of ``--public-url``
(``CLASSMOOD_PUBLIC_URL``) and each ``--allowed-host`` (``CLASSMOOD_ALLOWED_HOSTS``, comma-separated).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

import streamlit
from starlette.middleware import Middleware
from streamlit.starlette import App

from classmood import netguard

PAGES = Path(__file__).resolve().parent / "main.py"
ALLOWED_HOSTS_ENV, PUBLIC_URL_ENV = "CLASSMOOD_ALLOWED_HOSTS", "CLASSMOOD_PUBLIC_URL"
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def inline_script_hashes(html: str) -> list[str]:
    """CSP ``'sha256-...'`` sources of the inline scripts of a page, so the policy can omit 'unsafe-inline'."""
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def policy() -> str:
    """The app's Content-Security-Policy: nothing from another origin, no framing by another site."""
    index = Path(streamlit.__file__).parent / "static" / "index.html"
    hashes = inline_script_hashes(index.read_text(encoding="utf-8")) if index.exists() else []
    return "; ".join(
        [
            "default-src 'self'",
            # blob: is how a v2 component (screenshare.py) loads its script; only our own scripts make blob URLs
            " ".join(["script-src 'self' blob:", *hashes]),
            "style-src 'self' 'unsafe-inline'",  # Streamlit styles its elements inline (emotion)
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "media-src 'self' data: blob: mediastream:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "frame-src 'self' blob: data:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        ]
    )


def headers() -> list[tuple[str, str]]:
    return [
        ("Content-Security-Policy", policy()),
        ("X-Frame-Options", "SAMEORIGIN"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
    ]


def names() -> netguard.Names:
    extra = [h.strip() for h in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if h.strip()]
    address = streamlit.config.get_option("server.address")
    return netguard.Names([*extra, *([address] if address else [])], [os.environ.get(PUBLIC_URL_ENV)])


netguard.limit_logs()
app = App(PAGES, middleware=[Middleware(netguard.SiteGuard, names=names(), headers=headers())])
