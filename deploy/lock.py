"""Write deploy/requirements.lock: every runtime dependency of the image, pinned, with its sha256.

``python deploy/lock.py`` asks pip to resolve ``.[app,postgres]`` without installing anything
(``pip install --dry-run --report``) and writes each resolved distribution as ``name==version
--hash=sha256:...`` for the file pip chose. The hashes are of the files for *this* interpreter and
platform, so run it with a CPython 3.11 on Linux x86_64 (the image's: Debian bookworm's python3 and
python:3.11-slim are both 3.11). The image build installs with ``--require-hashes`` from this file
only, so a rebuild gets the same files or fails. No PyTorch: the image has the runtime extras only.
``--extras app,postgres,cluster --out deploy/requirements-cluster.lock`` pins the Ray image's
(``make image-cluster``: the same image with Ray, for ``classmood batch`` workers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "deploy" / "requirements.lock"
EXTRAS = "app,postgres"
HEADER = (
    "# The image's runtime dependencies ({extras} extras of classmood), pinned with sha256.\n"
    "# Written by `make lock` (python deploy/lock.py) with CPython {py} on {platform}; do not edit.\n"
    "# Installed by deploy/build_image.sh and the Dockerfile with pip --require-hashes.\n"
)


def resolve(project: Path = ROOT, extras: str = EXTRAS) -> list[dict[str, object]]:
    """pip's installation report of ``project[extras]`` as if nothing were installed."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        cmd += ["--only-binary=:all:", "--report", str(report), f"{project}[{extras}]"]
        subprocess.run(cmd, check=True)
        return list(json.loads(report.read_text())["install"])


def lock_lines(install: list[dict[str, object]], skip: str = "classmood") -> list[str]:
    """``name==version --hash=sha256:...`` for every resolved distribution but the project itself."""
    lines = []
    for item in install:
        meta, info = item["metadata"], item["download_info"]
        assert isinstance(meta, dict) and isinstance(info, dict)
        name = str(meta["name"]).lower().replace("_", "-")
        if name == skip:
            continue
        hashes = info.get("archive_info", {}).get("hashes", {})
        if "sha256" not in hashes:
            raise SystemExit(f"lock: pip gave no sha256 for {name} ({info.get('url')})")
        lines.append(f"{name}=={meta['version']} --hash=sha256:{hashes['sha256']}")
    return sorted(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=LOCK)
    parser.add_argument("--extras", default=EXTRAS, help=f"classmood's extras to pin (default {EXTRAS})")
    args = parser.parse_args(argv)
    if sys.version_info[:2] != (3, 11) or not sys.platform.startswith("linux"):
        print("lock: run with CPython 3.11 on Linux (the image's Python)", file=sys.stderr)
        return 2
    import platform

    header = HEADER.format(extras=args.extras, py=platform.python_version(), platform=f"linux {platform.machine()}")
    args.out.write_text(header + "\n".join(lock_lines(resolve(extras=args.extras))) + "\n")
    print(f"lock: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
