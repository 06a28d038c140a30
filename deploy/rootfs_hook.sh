#!/usr/bin/env bash
# Populate an image rootfs with classmood, without running anything in a container (no RUN step):
# called as `deploy/rootfs_hook.sh ROOTFS WHEELS` by deploy/build_image.sh, either as an mmdebstrap
# customize-hook (Debian base) or on an unpacked base image (BASE=python:3.11-slim). ROOTFS needs
# a python3 (3.11, the lock's) and useradd; WHEELS holds requirements.lock, its wheels (hash-checked
# when downloaded and again here) and classmood's own wheel (models and onnxruntime-web inside).
set -euo pipefail
ROOTFS=$1
WHEELS=$2
VENV=/opt/classmood
# A clean environment: nothing of the host's (PIP_* settings, PATH) leaks into the image's commands.
in_root() {
    chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 "$@"
}

mkdir -p "$ROOTFS/tmp/wheels"
cp "$WHEELS"/* "$ROOTFS/tmp/wheels/"
PROJECT=$(cd "$WHEELS" && ls classmood-*.whl)
# The venv's own pip (Debian's python3-venv) installs offline from the copied wheels only.
in_root python3 -m venv "$VENV"
in_root PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install -q --no-index \
    --find-links /tmp/wheels --require-hashes --only-binary=:all: -r /tmp/wheels/requirements.lock
in_root PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install -q --no-index --no-deps "/tmp/wheels/$PROJECT"
in_root "$VENV/bin/pip" uninstall -q -y pip setuptools
rm -rf "$ROOTFS/tmp/wheels"

# The non-root user the image runs as, and the volume for the session database and outputs.
in_root useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin classmood
mkdir -p "$ROOTFS/data"
chown 1000:1000 "$ROOTFS/data"

# Strip what nothing reads at run time: byte-code caches (the image runs with PYTHONDONTWRITEBYTECODE,
# and a read-only /opt could not keep them anyway), test suites of the big wheels, C headers, docs, man
# pages, locales other than C, apt's package lists and caches.
SITE=$(echo "$ROOTFS$VENV"/lib/python3*/site-packages)
find "$ROOTFS$VENV" "$ROOTFS/usr/lib/python3"* -name __pycache__ -type d -prune -exec rm -rf {} +
for d in scipy numpy pandas pyarrow matplotlib sklearn skimage; do
    find "$SITE/$d" -depth -type d -name tests -exec rm -rf {} + 2>/dev/null || true
done
rm -rf "$SITE"/pyarrow/include "$SITE"/numpy/_core/include "$SITE"/pyarrow/*.pxd
find "$SITE/pyarrow" -name '*.pyx' -delete -o -name '*.pxd' -delete -o -name '*.h' -delete
rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/*.log "$ROOTFS"/usr/lib/python3.11/test \
    "$ROOTFS"/usr/lib/python3.11/idlelib "$ROOTFS"/usr/lib/python3.11/ensurepip "$ROOTFS"/usr/share/python-wheels
# pyarrow's Flight RPC and S3 filesystem (nothing here imports them; pyarrow.fs imports S3 only if
# present), its C++ test module, and pydeck's Jupyter widget bundle (classmood draws no pydeck charts).
rm -f "$SITE"/pyarrow/libarrow_flight.so* "$SITE"/pyarrow/libarrow_python_flight.so* "$SITE"/pyarrow/_flight.*.so \
    "$SITE"/pyarrow/flight.py "$SITE"/pyarrow/libarrow_s3.so* "$SITE"/pyarrow/_s3fs.*.so "$SITE"/pyarrow/_pyarrow_cpp_tests.*.so
rm -rf "$SITE"/pydeck/nbextension
# (Not stripped: the wheels' shared libraries. strip --strip-unneeded would save about 70 MB, but
# auditwheel's patchelf-edited libraries break: "ELF load command address/offset not page-aligned".)
# Wheels cannot hold symlinks, so a library's SONAME copies are whole files: hard links instead.
in_root "$VENV/bin/python" - <<'PY'
import hashlib, os
seen: dict[tuple[int, str], str] = {}
for top, _, files in os.walk("/opt/classmood"):
    for name in files:
        path = os.path.join(top, name)
        if os.path.islink(path) or os.path.getsize(path) < 1 << 16:
            continue
        with open(path, "rb") as f:
            key = (os.path.getsize(path), hashlib.sha256(f.read()).hexdigest())
        if key in seen:
            os.unlink(path)
            os.link(seen[key], path)
        else:
            seen[key] = path
PY
