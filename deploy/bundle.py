"""Adapt the runtime config that ``umoci unpack`` wrote for running classmood's image with runc.

    umoci unpack --image build/oci:latest BUNDLE
    python3 deploy/bundle.py BUNDLE --host-network --data /srv/classmood-data \\
        --env CLASSMOOD_PASSWORD_HASH="$HASH" [-- COMMAND ...]
    runc run -d --bundle BUNDLE classmood

What it changes in BUNDLE/config.json (the image's own user, environment and command stay):

* ``process.rlimits`` removed (``--keep-rlimits`` keeps it): runc applies it with setrlimit, which
  some sandboxes forbid ("error setting rlimits ... operation not permitted"; the one classmood is
  developed in does). The app raises its open-file limit itself where it may.
* ``process.terminal`` false, so ``runc run -d`` needs no console socket; output goes to runc's.
* ``--host-network``: no network namespace of its own, so the app's ports are the host's (runc
  sets up no port forwarding or bridge); without it the container has only its own loopback.
* ``--data DIR``: the image's volume /data is DIR on the host (default: a tmpfs, lost at exit);
  DIR must be writable by the image's user (uid 1000).
* ``--read-only``: the rootfs read-only, with tmpfs on /tmp and the home folder.
* ``--hostname NAME``: the container's host name (umoci's default is the same for every container).
  Give each container its own where several run on one machine: ``classmood batch`` tells a Ray
  actor on its own machine by the host name, and would take a container with the driver's host name
  but not its processes for a batch that died.
* ``--env K=V``: added to the image's environment (repeatable); ``-- COMMAND``: instead of the
  image's command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HOME = "/home/classmood"


def configure(
    config: dict[str, Any],
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    data: Path | None = None,
    host_network: bool = False,
    read_only: bool = False,
    keep_rlimits: bool = False,
    hostname: str | None = None,
) -> dict[str, Any]:
    """A copy of ``config`` (an OCI runtime config) changed as the module docstring says."""
    config = json.loads(json.dumps(config))
    process = config["process"]
    process["terminal"] = False
    if not keep_rlimits:
        process.pop("rlimits", None)
    if args:
        process["args"] = list(args)
    names = {k for k in (env or {})}
    process["env"] = [e for e in process["env"] if e.split("=", 1)[0] not in names]
    process["env"] += [f"{k}={v}" for k, v in (env or {}).items()]
    if hostname:
        config["hostname"] = hostname
    if host_network:
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"]
    mounts = [m for m in config["mounts"] if m["destination"] != "/data" or data is None]
    if data is not None:
        mounts.append({"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "rw"]})
    if read_only:
        config["root"]["readonly"] = True
        for where in ("/tmp", HOME):
            mounts.append({"destination": where, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]})
    config["mounts"] = mounts
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the folder umoci unpack wrote (config.json, rootfs/)")
    parser.add_argument("--host-network", action="store_true", help="share the host's network (its ports)")
    parser.add_argument("--data", type=Path, help="host folder for the /data volume")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="an environment variable")
    parser.add_argument("--read-only", action="store_true", help="read-only rootfs, tmpfs /tmp and home")
    parser.add_argument("--keep-rlimits", action="store_true", help="keep process.rlimits")
    parser.add_argument("--hostname", help="the container's host name")
    parser.epilog = "-- COMMAND ...: run this instead of the image's command"
    argv = sys.argv[1:] if argv is None else argv
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    path = args.bundle / "config.json"
    if not path.is_file():
        parser.error(f"{path}: not found (make it with: umoci unpack --image build/oci:latest {args.bundle})")
    bad = [e for e in args.env if "=" not in e or e.startswith("=")]
    if bad:
        parser.error(f"--env {bad[0]!r}: give K=V")
    env = dict(e.split("=", 1) for e in args.env)
    data = args.data.resolve() if args.data is not None else None
    config = configure(
        json.loads(path.read_text()),
        command,
        env,
        data,
        args.host_network,
        args.read_only,
        args.keep_rlimits,
        args.hostname,
    )
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)  # it may hold the password hash and a database URL: for root (runc) only
    print(f"bundle: {path} ready for: runc run [-d] --bundle {args.bundle} NAME (-d for a server)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
