"""onnxruntime-web for the student page, taken from the npm registry at install time and served by classmood.

Why not commit it: the WASM runtime is 15 MB (more than every shipped model together) and is
Microsoft's build, not ours. Why not a CDN: nothing may be fetched from the internet at run time.
So ``make`` (``python -m classmood.classroom.vendor``) downloads the pinned tarball once, checks
its sha512 against the integrity the registry published for that version, and keeps only the
three files the WASM backend needs plus the licence notice. The hub refuses to open a class
without them and says how to get them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

VERSION = "1.31.1"
TARBALL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
# ``dist.integrity`` of onnxruntime-web@1.31.1 in the npm registry
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
# the ES module of the WASM-only build, and the runtime it loads (single-threaded use: no COOP/COEP needed)
FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor" / "onnxruntime-web"
NOTICE = (
    f"onnxruntime-web {VERSION} (MIT License, Copyright (c) Microsoft Corporation), "
    f"from {TARBALL}, sha512 checked. Installed by `python -m classmood.classroom.vendor`.\n"
)


def installed(folder: Path = VENDOR_DIR) -> bool:
    """True when every file the student page needs is present (and the version matches)."""
    stamp = folder / "VERSION"
    return all((folder / f).is_file() for f in FILES) and stamp.is_file() and stamp.read_text().strip() == VERSION


def _check_integrity(data: bytes) -> None:
    algo, _, expected = INTEGRITY.partition("-")
    digest = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if digest != expected:
        raise ValueError(f"the onnxruntime-web tarball does not match the pinned {algo} ({digest[:16]}...)")


def extract(data: bytes, folder: Path = VENDOR_DIR) -> None:
    """Unpack the needed files from a verified tarball into ``folder`` (written elsewhere, then moved)."""
    _check_integrity(data)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".ortweb-", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for name in FILES:
                member = tar.getmember(f"package/dist/{name}")
                source = tar.extractfile(member)
                if source is None:
                    raise ValueError(f"{name} is not a file in the tarball")
                (work / name).write_bytes(source.read())
        (work / "NOTICE").write_text(NOTICE)
        (work / "VERSION").write_text(VERSION + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        work.chmod(0o755)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def install(folder: Path = VENDOR_DIR, timeout: float = 120.0, attempts: int = 3) -> bool:
    """Download and unpack unless already there; returns True when something was installed."""
    if installed(folder):
        return False
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(TARBALL, timeout=timeout) as response:  # a fixed https URL
                data = response.read()
            break
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(2.0 * (attempt + 1))
    extract(data, folder)
    return True


def main() -> int:
    try:
        done = install()
    except (OSError, ValueError, KeyError, tarfile.TarError) as exc:
        print(f"classmood: error: could not install onnxruntime-web {VERSION}: {exc}", file=sys.stderr)
        return 2
    print(f"onnxruntime-web {VERSION} {'installed in' if done else 'already in'} {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
