"""``classmood app``: the classroom web app."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("app", help="the classroom web app (Streamlit) on http://localhost:8501")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; not loopback needs a password")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--db", help="session database: SQLite file path or SQLAlchemy URL (default: see 'sessions')")
    p.add_argument("--max-upload-mb", type=int, help="largest uploaded recording in MB (default 500)")
    p.add_argument(
        "--class-port",
        type=int,
        help="port of the student-side hub (the students' join page and sockets; default 8502)",
    )
    p.add_argument(
        "--public-url",
        help="the address students reach the hub at, e.g. https://class.example.edu behind a reverse proxy "
        "(shown in the join link; webcams need HTTPS off localhost)",
    )
    p.add_argument("--class-size", type=int, help="most students in one student-side class (default 100)")
    p.add_argument(
        "--per-client",
        type=int,
        help="most students of one class from one network address (default: 4, and at most k - 2 for k >= 3)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a reverse proxy (address or network) whose X-Forwarded-For names the client; repeatable",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name the app and the hub are reached at (others are refused); repeatable",
    )
    p.add_argument(
        "--no-facing",
        action="store_true",
        help="estimate no head orientation anywhere in the app (live, uploads, students' pages): expressions only",
    )
    p.add_argument(
        "--hash-password",
        action="store_true",
        help="instead: read a password and print its salted hash for CLASSMOOD_PASSWORD_HASH",
    )
    p.set_defaults(func=_cmd_app)


def _cmd_app(args: argparse.Namespace) -> int:
    from classmood.app import auth, server
    from classmood.store.engine import check_db

    check_db(args.db)  # --db '' is refused, never the default database
    if args.hash_password:
        print(auth.hash_password(server.read_new_password()))
        return 0
    limits = server.NetworkLimits(args.class_size, args.per_client, tuple(args.trusted_proxy), tuple(args.allowed_host))
    return server.run_app(
        args.host,
        args.port,
        args.db,
        args.max_upload_mb,
        args.class_port,
        args.public_url,
        limits=limits,
        facing=not args.no_facing,
    )
