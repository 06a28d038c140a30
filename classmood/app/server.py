"""``classmood app``: start the Streamlit server for the web app with safe defaults.

Localhost unless told otherwise; on any other address a password must be configured (see
``auth``), and the server only ever sees its hash. The session database given with ``--db``
reaches the app through ``DATABASE_URL`` (a URL) or ``CLASSMOOD_DB`` (a path).
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from classmood import netguard
from classmood.app import auth
from classmood.errors import ClassmoodError

MAIN = Path(__file__).resolve().parent / "asgi.py"  # the pages (main.py) behind the app's network rules
# ``classmood app --no-facing`` sets this for the server it starts: no orientation anywhere in the app
# (live and uploaded analyses, and the students' pages, which then send no facing number).
FACING_ENV = "CLASSMOOD_FACING"


def facing_enabled(env: Mapping[str, str]) -> bool:
    return env.get(FACING_ENV, "on").strip().lower() != "off"


@dataclass(frozen=True)
class NetworkLimits:
    """What ``classmood app`` passes to the student hub and the app's gate (README "Deployment")."""

    class_size: int | None = None
    per_client: int | None = None
    trusted_proxies: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()

    def env(self) -> dict[str, str]:
        """Checked, as the environment the server reads (``classroom.hub.hub_settings``, ``app/asgi``)."""
        for flag, value in (("--class-size", self.class_size), ("--per-client", self.per_client)):
            if value is not None and value < 1:
                raise ClassmoodError(f"{flag} {value}: at least 1")
        try:
            netguard.parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ClassmoodError(f"--trusted-proxy: {exc}") from None
        if any(not h.strip() or "," in h for h in self.allowed_hosts):
            raise ClassmoodError("--allowed-host: one host name each, e.g. class.example.edu")
        out = {}
        if self.class_size is not None:
            out["CLASSMOOD_CLASS_SIZE"] = str(self.class_size)
        if self.per_client is not None:
            out["CLASSMOOD_PER_CLIENT"] = str(self.per_client)
        if self.trusted_proxies:
            out[auth.TRUSTED_PROXIES_ENV] = ",".join(self.trusted_proxies)
        if self.allowed_hosts:
            out["CLASSMOOD_ALLOWED_HOSTS"] = ",".join(h.strip() for h in self.allowed_hosts)
        return out


def build_command(host: str, port: int, max_upload: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(MAIN),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(max_upload),
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--client.showErrorDetails",  # an uncaught error shows a generic message: no traceback, no file paths
        "none",
        # Streamlit's banner, on 0.0.0.0 and headless, asks checkip.amazonaws.com for this machine's
        # external address: nothing may be fetched at run time, and run_app prints the address itself
        "--logger.hideWelcomeMessage",
        "true",
    ]


def server_env(env: Mapping[str, str], password_hash: str | None, db: str | None, max_upload: int) -> dict[str, str]:
    """The server's environment: the password only as a hash, the database, the upload limit."""
    out = dict(env)
    out.pop(auth.PLAIN_ENV, None)
    if password_hash:
        out[auth.HASH_ENV] = password_hash
    if db:
        if "://" in db:
            out["DATABASE_URL"] = db
        else:
            out.pop("DATABASE_URL", None)
            out["CLASSMOOD_DB"] = str(Path(db).expanduser().absolute())
    out["CLASSMOOD_MAX_UPLOAD_MB"] = str(max_upload)  # read by uploads.max_upload_mb()
    return out


def read_new_password() -> str:
    """A password from the terminal (asked twice) or from the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            raise ClassmoodError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def run_app(
    host: str,
    port: int,
    db: str | None = None,
    max_upload: int | None = None,
    class_port: int | None = None,
    public_url: str | None = None,
    limits: NetworkLimits | None = None,
    facing: bool = True,
) -> int:
    if not 0 < port < 65536:
        raise ClassmoodError(f"--port {port}: not a TCP port")
    if class_port is not None and not (0 < class_port < 65536 and class_port != port):
        raise ClassmoodError(f"--class-port {class_port}: not a free TCP port other than --port")
    if max_upload is not None and not 1 <= max_upload <= 1_000_000:  # (0 or less: every upload refused)
        raise ClassmoodError(f"--max-upload-mb {max_upload}: give the largest upload in MB, from 1")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise ClassmoodError(f"--public-url {public_url!r}: give the full address, e.g. https://class.example.edu")
    limit_env = (limits or NetworkLimits()).env()
    password_hash = auth.check_bind(host, os.environ)
    from classmood.app.uploads import max_upload_mb

    limit = max_upload or max_upload_mb()
    if db:
        from classmood.store import open_store

        open_store(db if "://" in db else f"sqlite:///{Path(db).expanduser().absolute()}").close()  # fail now
    cmd = build_command(host, port, limit)
    env = server_env(os.environ, password_hash, db, limit)
    if class_port is not None:
        env["CLASSMOOD_CLASS_PORT"] = str(class_port)  # read by app/ui.class_hub()
    if public_url is not None:
        env["CLASSMOOD_PUBLIC_URL"] = public_url
    env.update(limit_env)
    env[FACING_ENV] = "on" if facing else "off"  # read by app/ui.pipeline_config and the hub
    netguard.raise_fd_limit()  # inherited by the server: a thousand idle connections must not reach 1,024
    shown = f"[{host}]" if ":" in host else host
    print(f"classmood app on http://{shown}:{port} (Ctrl-C stops it)", flush=True)
    if os.name == "posix":
        os.execve(sys.executable, cmd, env)  # the server replaces this process: signals reach it directly
    return subprocess.call(cmd, env=env)
