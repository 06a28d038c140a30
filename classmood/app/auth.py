"""Who may open the app: localhost by default, a password whenever it listens on another address.

The password is configured as a salted scrypt hash in ``CLASSMOOD_PASSWORD_HASH`` (made with
``classmood app --hash-password``), or as plain text in ``CLASSMOOD_PASSWORD``, which is hashed
in memory when the app starts and never written anywhere. Attempts are hashed with the stored
salt and compared in constant time.

Wrong passwords slow a client down (``sign_in``, ``netguard.Backoff``): three free tries, then 1, 2,
4 ... 60 s between tries, and after 10 wrong ones in a row the client's address waits 15 minutes. A
try made while waiting is not checked at all, so waiting cannot be skipped by trying faster. The client
is the connection's address, or behind a configured proxy (``CLASSMOOD_TRUSTED_PROXIES``) the address it
forwards.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping

from classmood import netguard
from classmood.errors import ClassmoodError

HASH_ENV = "CLASSMOOD_PASSWORD_HASH"
PLAIN_ENV = "CLASSMOOD_PASSWORD"
TRUSTED_PROXIES_ENV = "CLASSMOOD_TRUSTED_PROXIES"
# One per server process: every browser session's wrong passwords count together, per client address.
BACKOFF = netguard.Backoff(free=3, max_delay_s=60.0, lockout_after=10, lockout_s=900.0)
_SCHEME = "scrypt"
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32


def _derive(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<hash hex>`` for ``password`` (a fresh random salt unless one is given)."""
    if not password:
        raise ClassmoodError("the password is empty")
    salt = salt if salt is not None else secrets.token_bytes(16)
    return f"{_SCHEME}${salt.hex()}${_derive(password, salt).hex()}"


def _parse(stored: str) -> tuple[bytes, bytes] | None:
    parts = stored.strip().split("$")
    if len(parts) != 3 or parts[0] != _SCHEME:
        return None
    try:
        salt, digest = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return None
    return (salt, digest) if salt and len(digest) == _DKLEN else None


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` value (constant-time comparison)."""
    parsed = _parse(stored)
    if parsed is None or not password:
        return False
    salt, digest = parsed
    return hmac.compare_digest(_derive(password, salt), digest)


def configured_hash(env: Mapping[str, str] | None = None) -> str | None:
    """The password hash the app checks against, or None when no password is configured."""
    env = os.environ if env is None else env
    stored = env.get(HASH_ENV, "").strip()
    if stored:
        if _parse(stored) is None:
            raise ClassmoodError(
                f"{HASH_ENV} is not a 'scrypt$salt$hash' value (make one: classmood app --hash-password)"
            )
        return stored
    plain = env.get(PLAIN_ENV, "")
    return hash_password(plain) if plain else None


def is_loopback(host: str | None) -> bool:
    """True for localhost and loopback addresses; False for '', '0.0.0.0', '::' and any other address."""
    if not host:
        return False
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_bind(host: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The password hash to require for serving on ``host``; refuses a non-local address without one."""
    stored = configured_hash(env)
    if stored is None and not is_loopback(host):
        raise ClassmoodError(
            f"refusing to listen on {host or 'all addresses'} without a password: set {HASH_ENV} "
            f"(classmood app --hash-password) or {PLAIN_ENV}"
        )
    return stored


def client_of(ip: str | None, forwarded_for: str | None, env: Mapping[str, str] | None = None) -> str:
    """The client key a sign-in counts against (``ip`` None means loopback, as Streamlit reports it)."""
    env = os.environ if env is None else env
    try:
        proxies = netguard.parse_networks(v for v in env.get(TRUSTED_PROXIES_ENV, "").split(",") if v.strip())
    except ValueError:
        proxies = ()  # server.run_app checked them; a hand-set bad value trusts nobody
    peer = ip if isinstance(ip, str) and ip else "127.0.0.1"
    forwarded = forwarded_for if isinstance(forwarded_for, str) else None
    return netguard.client_key(netguard.client_address(peer, forwarded, proxies))


def sign_in(password: str, stored: str, client: str, backoff: netguard.Backoff | None = None) -> tuple[bool, str]:
    """Check a password from ``client`` under the backoff (``BACKOFF``): (signed in, the plain message to show)."""
    backoff = backoff or BACKOFF
    wait = backoff.wait_s(client)
    if wait > 0:
        return False, f"Too many wrong passwords: try again in {netguard.wait_text(wait)}."
    if verify_password(password, stored):
        backoff.succeeded(client)
        return True, ""
    delay = backoff.failed(client)
    if delay >= backoff.lockout_s:
        return False, (
            f"Wrong password. After {backoff.lockout_after} wrong passwords in a row, sign-in from this address "
            f"is locked for {netguard.wait_text(delay)}."
        )
    if delay > 0:
        return False, f"Wrong password. Try again in {netguard.wait_text(delay)}."
    return False, "Wrong password."
