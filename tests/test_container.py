"""The OCI image of ``make image``, run with runc and checked from outside the container (issue 26).

The tests that run containers are skipped unless runc and umoci are installed, this runs as root,
and a built image exists: ``make image`` writes build/oci (71-145 s, so the test never builds it
itself), or CLASSMOOD_TEST_IMAGE names another OCI layout as ``path[:tag]``. The image is unpacked
once into an OCI bundle whose rootfs every container of this module shares read-only (/tmp and the
home folder are tmpfs, /data is a host folder bind-mounted as the volume). Two changes to umoci's
runtime config, both for this machine rather than for the image:

* ``process.rlimits`` is removed (by deploy/bundle.py, as in the README's runc steps): applying it
  needs setrlimit, which this sandbox forbids ("error setting rlimits ... operation not permitted",
  the same failure that stops ``podman run``). The app raises its open-file limit itself where it
  may (netguard.raise_fd_limit).
* the network namespace is removed (host networking) for the servers, so their ports are reachable
  from the test; ports are picked free on the host and given in the containers' command lines,
  so the test never collides with a dev server on 8501/8502. ``classmood analyze`` keeps its own
  empty network namespace: it reaches nothing, so it fetches nothing at run time.

Each container also gets its own host name (umoci gives every one the same; ``classmood batch``
tells machines apart by it). With CLASSMOOD_TEST_POSTGRES_URL (a PostgreSQL on the host; .ci/run
starts one) a session is also saved there from inside the container through DATABASE_URL. With
the host's ``caddy``, deploy/Caddyfile (compose.yaml's proxy) serves the containers over HTTPS. With
the Ray image (``make image-cluster``, or CLASSMOOD_TEST_CLUSTER_IMAGE) two containers form a Ray
cluster for ``classmood batch``. Without runc, the Dockerfile, compose.yaml and the locks are still
checked against deploy/build_image.sh and pyproject.toml.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("CLASSMOOD_TEST_IMAGE") or f"{ROOT / 'build' / 'oci'}:latest"
CLUSTER_IMAGE = os.environ.get("CLASSMOOD_TEST_CLUSTER_IMAGE") or f"{ROOT / 'build' / 'oci-cluster'}:latest"
POSTGRES_URL = os.environ.get("CLASSMOOD_TEST_POSTGRES_URL")
UID = 1000  # the image's user (deploy/rootfs_hook.sh)
# deploy/bundle.py: the README's way of adapting umoci's runtime config (rlimits, network, /data)
_spec = importlib.util.spec_from_file_location("classmood_deploy_bundle", ROOT / "deploy" / "bundle.py")
assert _spec is not None and _spec.loader is not None
BUNDLE = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(BUNDLE)


def _image_missing(image: str = IMAGE, make: str = "make image", variable: str = "CLASSMOOD_TEST_IMAGE") -> str | None:
    for tool in ("runc", "umoci"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install runc umoci)"
    if os.geteuid() != 0:
        return "runc needs root here"
    layout = Path(image.rsplit(":", 1)[0] if ":" in Path(image).name else image)
    if not (layout / "index.json").is_file():
        return f"no OCI image at {layout} (build it with `{make}`, or set {variable}=path:tag)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Runc:
    """Containers from one unpacked image: each gets its own bundle folder (config.json) over the shared rootfs."""

    def __init__(self, base_config: dict[str, Any], rootfs: Path, work: Path) -> None:
        self.base, self.rootfs, self.work = base_config, rootfs, work
        self.prefix = f"classmood-test-{uuid.uuid4().hex[:8]}"
        self.started: list[str] = []

    def bundle(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        data: Path | None = None,
        host_network: bool = True,
    ) -> tuple[str, Path]:
        cid = f"{self.prefix}-{name}"
        config = BUNDLE.configure(
            self.base, args, env, data, host_network=host_network, read_only=True, hostname=cid[-60:]
        )
        config["root"]["path"] = str(self.rootfs)  # one unpacked rootfs for every container of the module
        folder = self.work / cid
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        return cid, folder

    def run(self, name: str, args: list[str], timeout: float = 180, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run to the end in the foreground; stdout and stderr captured."""
        cid, folder = self.bundle(name, args, **kw)
        self.started.append(cid)
        try:
            return subprocess.run(
                ["runc", "run", "--bundle", str(folder), cid], capture_output=True, text=True, timeout=timeout
            )
        finally:
            self.remove(cid)

    def start(self, name: str, args: list[str], **kw: Any) -> tuple[str, subprocess.Popen[str], Path]:
        """Start in the background (``runc run`` in a subprocess); its output goes to a log file."""
        cid, folder = self.bundle(name, args, **kw)
        log = folder / "output.log"
        self.started.append(cid)
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["runc", "run", "--bundle", str(folder), cid], stdout=out, stderr=subprocess.STDOUT, text=True
            )
        return cid, proc, log

    def pid(self, cid: str) -> int:
        state = subprocess.run(["runc", "state", cid], capture_output=True, text=True, check=True)
        return int(json.loads(state.stdout)["pid"])

    def remove(self, cid: str) -> None:
        subprocess.run(["runc", "kill", cid, "KILL"], capture_output=True)
        subprocess.run(["runc", "delete", "--force", cid], capture_output=True)

    def remove_all(self) -> None:
        for cid in self.started:
            self.remove(cid)


def _unpacked(image: str, missing: str | None, factory: pytest.TempPathFactory) -> Iterator[Runc]:
    if missing is not None:
        pytest.skip(missing)
    work = factory.mktemp("oci")
    unpacked = work / "image"
    subprocess.run(["umoci", "unpack", "--image", image, str(unpacked)], check=True, capture_output=True)
    base = json.loads((unpacked / "config.json").read_text())
    r = Runc(base, unpacked / "rootfs", work)
    try:
        yield r
    finally:
        r.remove_all()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def runc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runc]:
    yield from _unpacked(IMAGE, _image_missing(), tmp_path_factory)


@pytest.fixture(scope="module")
def runc_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runc]:
    """The Ray image (make image-cluster; CLASSMOOD_TEST_CLUSTER_IMAGE names another)."""
    missing = _image_missing(CLUSTER_IMAGE, "make image-cluster", "CLASSMOOD_TEST_CLUSTER_IMAGE")
    yield from _unpacked(CLUSTER_IMAGE, missing, tmp_path_factory)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The /data volume: a host folder the image's user may write to."""
    folder = tmp_path / "data"
    folder.mkdir()
    os.chown(folder, UID, UID)
    return folder


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def _wait_for(url: str, proc: subprocess.Popen[str], log: Path, seconds: float = 90) -> bytes:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the container exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            status, body = _get(url, timeout=2)
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {seconds:.0f} s: {log.read_text()[-2000:]}")


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def _dockerfile() -> dict[str, list[str]]:
    """The Dockerfile's instructions by keyword (continuation lines joined)."""
    out: dict[str, list[str]] = {}
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            out.setdefault(keyword, []).append(" ".join(rest.split()))
    return out


def _build_script_list(flag: str) -> list[str]:
    """The values of one repeated umoci flag (e.g. --config.cmd) in deploy/build_image.sh."""
    text = (ROOT / "deploy" / "build_image.sh").read_text()
    return [word.split("=", 1)[1] for word in text.split() if word.startswith(f"{flag}=")]


def test_the_dockerfile_builds_what_make_image_builds() -> None:
    """Docker users get the same pinned runtime, user, ports, volume and command (no Docker run here)."""
    steps = _dockerfile()
    assert steps["FROM"] == ["python:3.11-slim"]
    run = " && ".join(steps["RUN"])
    assert "--require-hashes" in run and "-r /tmp/requirements.lock" in run
    assert any(c.startswith("deploy/requirements.lock ") for c in steps["COPY"])
    assert "python -m classmood.classroom.vendor" in run and "pip install --no-deps ." in run
    assert "useradd --uid 1000" in run and steps["USER"] == ["1000:1000"]
    assert steps["VOLUME"] == ["/data"] and steps["EXPOSE"] == ["8501 8502"]
    assert "CLASSMOOD_DB=/data/sessions.db" in steps["ENV"][0]
    assert json.loads(steps["CMD"][0]) == _build_script_list("--config.cmd")
    assert sorted(f"{p}" for p in steps["EXPOSE"][0].split()) == [
        p.split("/")[0] for p in _build_script_list("--config.exposedports")
    ]
    health = "urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"  # the image's label, Docker's HEALTHCHECK
    assert health in steps["HEALTHCHECK"][0] and health in (ROOT / "deploy" / "build_image.sh").read_text()


def test_the_lock_pins_every_runtime_dependency_and_no_pytorch() -> None:
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["app"]]
    wanted += project["optional-dependencies"]["postgres"]
    lines = [ln for ln in (ROOT / "deploy" / "requirements.lock").read_text().splitlines() if not ln.startswith("#")]
    pinned = {ln.split("==")[0] for ln in lines}
    assert all(re.fullmatch(r"[a-z0-9.-]+==\S+ --hash=sha256:[0-9a-f]{64}", ln) for ln in lines)
    for requirement in wanted:
        name = re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pinned, f"{name} is not in deploy/requirements.lock: run make lock"
    assert not pinned & {"torch", "onnx", "onnxscript", "ray", "pytest"}
    cluster = (ROOT / "deploy" / "requirements-cluster.lock").read_text().splitlines()
    cluster_pins = {ln.split(" ")[0] for ln in cluster if not ln.startswith("#")}
    assert {ln.split(" ")[0] for ln in lines} <= cluster_pins  # the Ray image: the same pins, plus Ray's
    assert any(p.startswith("ray==") for p in cluster_pins) and not any(p.startswith("torch==") for p in cluster_pins)


def test_the_image_has_its_config_and_no_pytorch(runc: Runc) -> None:
    process = runc.base["process"]
    assert process["user"]["uid"] == UID and process["args"][:2] == ["classmood", "app"]
    assert "CLASSMOOD_DB=/data/sessions.db" in process["env"]
    assert (runc.rootfs / "opt/classmood/bin/classmood").is_file()
    site = next((runc.rootfs / "opt/classmood/lib").glob("python3*/site-packages"))
    assert not (site / "torch").exists()
    assert (site / "classmood/classroom/static/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm").is_file()
    assert list((site / "classmood/weights").glob("*.onnx"))


def test_the_app_refuses_all_interfaces_without_a_password(runc: Runc) -> None:
    done = runc.run("nopassword", ["classmood", "app", "--host", "0.0.0.0", "--port", str(free_port())], timeout=60)
    assert done.returncode != 0
    assert "refusing to listen on 0.0.0.0 without a password" in done.stderr


def test_the_app_serves_its_health_as_a_non_root_user(runc: Runc, data: Path) -> None:
    port = free_port()
    args = ["classmood", "app", "--host", "0.0.0.0", "--port", str(port), "--class-port", str(free_port())]
    cid, proc, log = runc.start("app", args, env={"CLASSMOOD_PASSWORD": "correct horse"}, data=data)
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/_stcore/health", proc, log) == b"ok"
        assert _uid_of(runc.pid(cid)) == UID
        status, page = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"<html" in page.lower()
        # Streamlit's start-up banner would ask checkip.amazonaws.com for an external address (and say
        # "Did not auto detect external IP" where it cannot): classmood hides it, so nothing is fetched
        assert "external IP" not in log.read_text() and "classmood app on http://0.0.0.0" in log.read_text()
    finally:
        runc.remove(cid)
        proc.wait(timeout=30)


def test_the_student_hub_serves_its_page_and_sockets(runc: Runc) -> None:
    from websockets.sync.client import connect

    port = free_port()
    args = ["python", "-m", "classmood.classroom.hub", "--host", "0.0.0.0", "--port", str(port), "--open-class", "3"]
    cid, proc, log = runc.start("hub", args)
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", proc, log)
        info = json.loads(log.read_text().splitlines()[0])
        assert _uid_of(runc.pid(cid)) == UID
        status, page = _get(f"http://127.0.0.1:{port}/join/{info['code']}")
        assert status == 200 and b"<html" in page.lower()
        status, _ = _get(f"http://127.0.0.1:{port}/static/vendor/onnxruntime-web/ort.wasm.min.mjs")
        assert status == 200  # onnxruntime-web is inside the image, not fetched from a CDN
        ws = f"ws://127.0.0.1:{port}"
        with (
            connect(f"{ws}/ws/teacher/{info['code']}?token={info['token']}") as teacher,
            connect(f"{ws}/ws/student?class={info['code']}") as student,
        ):
            welcome = json.loads(student.recv(timeout=10))
            assert welcome["type"] == "welcome" and welcome["pseudonym"].startswith("p-")
            deadline, state = time.time() + 15, dict[str, Any]()
            while time.time() < deadline and state.get("students") != 1:
                state = json.loads(teacher.recv(timeout=10))  # the teacher's view counts the student
            assert state["code"] == info["code"] and state["students"] == 1
    finally:
        runc.remove(cid)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic faces, 2 s at 10 fps (the clip of tests/test_app_logic.py)."""
    from tests.test_pipeline import write_video
    from tests.test_vision import gallery

    frame, _ = gallery(rows=2, cols=3, face_px=80)
    return write_video(tmp_path_factory.mktemp("clip") / "class.mp4", [frame] * 20)


def test_analyze_writes_to_the_volume_without_any_network(runc: Runc, data: Path, clip: Path) -> None:
    shutil.copy(clip, data / "class.mp4")
    args = ["classmood", "analyze", "/data/class.mp4", "--out", "/data/out", "--bin", "1", "--annotate"]
    done = runc.run("analyze", args, data=data, host_network=False)  # an empty network namespace
    assert done.returncode == 0, done.stderr[-2000:]
    out = data / "out"
    assert {"faces.csv", "class_mood.csv", "summary.json", "report.html", "annotated.mp4"} <= {
        p.name for p in out.iterdir()
    }
    assert len((out / "faces.csv").read_text().splitlines()) == 1 + 6 * 4  # 6 faces in 4 analysed frames
    assert json.loads((out / "summary.json").read_text())
    assert (out / "faces.csv").stat().st_uid == UID  # written by the image's user, not root


@pytest.mark.skipif(POSTGRES_URL is None, reason="CLASSMOOD_TEST_POSTGRES_URL is not set (.ci/run sets it)")
def test_analyze_saves_a_session_to_postgresql_on_the_host(runc: Runc, data: Path, clip: Path) -> None:
    from classmood.store import open_store

    assert POSTGRES_URL
    name = f"container-{uuid.uuid4().hex[:8]}.mp4"
    shutil.copy(clip, data / name)
    args = ["classmood", "analyze", f"/data/{name}", "--out", "/data/out", "--bin", "1", "--save"]
    done = runc.run("postgres", args, env={"DATABASE_URL": POSTGRES_URL}, data=data)
    assert done.returncode == 0, done.stderr[-2000:]
    store = open_store(POSTGRES_URL)
    try:
        sessions = store.list_sessions()
        mine = sessions[sessions["source"].astype(str).str.contains(name, regex=False)]
        assert len(mine) == 1 and int(mine.iloc[0]["faces"]) == 24
        store.delete(int(mine.iloc[0]["id"]))
    finally:
        store.close()


def test_bundle_config_drops_rlimits_and_binds_the_volume(tmp_path: Path) -> None:
    umoci_like: dict[str, Any] = {
        "process": {"terminal": True, "args": ["classmood", "app"], "env": ["PATH=/bin", "CLASSMOOD_DB=/data/x"]},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/data", "type": "tmpfs", "source": "none"}, {"destination": "/proc"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"}]},
    }
    umoci_like["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    config = BUNDLE.configure(umoci_like, ["id"], {"CLASSMOOD_DB": "/data/y"}, tmp_path, host_network=True)
    assert "rlimits" not in config["process"] and config["process"]["terminal"] is False
    assert config["process"]["args"] == ["id"] and config["process"]["env"] == ["PATH=/bin", "CLASSMOOD_DB=/data/y"]
    assert [n["type"] for n in config["linux"]["namespaces"]] == ["pid", "mount"]
    assert {"destination": "/data", "type": "bind", "source": str(tmp_path), "options": ["rbind", "rw"]} in config[
        "mounts"
    ]
    assert len(config["mounts"]) == 2 and "rlimits" in umoci_like["process"]  # the input is left as it was
    kept = BUNDLE.configure(umoci_like, keep_rlimits=True, read_only=True)
    assert kept["process"]["rlimits"] and kept["root"]["readonly"] and len(kept["mounts"]) == 4
    assert any(n["type"] == "network" for n in kept["linux"]["namespaces"])


def test_caddy_serves_the_app_and_the_hub_over_https(runc: Runc, tmp_path: Path) -> None:
    """deploy/Caddyfile (compose.yaml's proxy) in front of the containers: TLS from Caddy's local CA,
    the app at /, the student pages and sockets at /class/ (Caddy runs on the host: no compose here)."""
    import ssl

    from websockets.sync.client import connect

    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.skip("caddy is not installed (apt-get install caddy)")
    app_port, hub_port, https_port, http_port, admin_port = (free_port() for _ in range(5))
    public = f"https://localhost:{https_port}/class"
    proxy = ["--public-url", public, "--trusted-proxy", "127.0.0.1"]
    app_args = ["classmood", "app", "--host", "0.0.0.0", "--port", str(app_port), "--class-port", str(free_port())]
    hub_args = ["python", "-m", "classmood.classroom.hub", "--host", "0.0.0.0", "--port", str(hub_port)]
    app, app_proc, app_log = runc.start("tls-app", [*app_args, *proxy], env={"CLASSMOOD_PASSWORD": "correct horse"})
    hub, hub_proc, hub_log = runc.start("tls-hub", [*hub_args, "--open-class", "3", *proxy])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CLASSMOOD_HOST": "localhost",
        "CLASSMOOD_HTTPS_PORT": str(https_port),
        "CLASSMOOD_HTTP_PORT": str(http_port),
        "CLASSMOOD_CADDY_ADMIN": f"127.0.0.1:{admin_port}",
        "CLASSMOOD_APP": f"127.0.0.1:{app_port}",
        "CLASSMOOD_HUB": f"127.0.0.1:{hub_port}",
    }
    log = tmp_path / "caddy.log"
    with log.open("w") as out:
        proxy_proc = subprocess.Popen(
            [caddy, "run", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(f"http://127.0.0.1:{app_port}/_stcore/health", app_proc, app_log)
        _wait_for(f"http://127.0.0.1:{hub_port}/health", hub_proc, hub_log)
        info = json.loads(hub_log.read_text().splitlines()[0])
        assert info["join"] == f"{public}/join/{info['code']}"
        root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        deadline = time.time() + 30
        while not root.is_file() and time.time() < deadline and proxy_proc.poll() is None:
            time.sleep(0.2)
        assert root.is_file(), log.read_text()[-2000:]
        tls = ssl.create_default_context(cafile=str(root))  # verified against Caddy's CA, not unchecked
        body = b""
        while time.time() < deadline + 30 and body != b"ok":
            try:
                with urllib.request.urlopen(f"https://localhost:{https_port}/_stcore/health", context=tls) as r:
                    body = r.read()
            except OSError:
                time.sleep(0.3)
        assert body == b"ok", log.read_text()[-2000:]
        with urllib.request.urlopen(info["join"], context=tls, timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        with connect(f"wss://localhost:{https_port}/class/ws/student?class={info['code']}", ssl=tls) as student:
            welcome = json.loads(student.recv(timeout=10))
            assert welcome["type"] == "welcome"
    finally:
        proxy_proc.terminate()
        proxy_proc.wait(timeout=30)
        for cid, proc in ((app, app_proc), (hub, hub_proc)):
            runc.remove(cid)
            proc.wait(timeout=30)


def test_compose_runs_the_image_behind_caddy_with_postgresql() -> None:
    """compose.yaml is not run here (no Docker engine): its pieces are checked against the image and the Caddyfile."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app, db, caddy = (compose["services"][s] for s in ("app", "db", "caddy"))
    flags = dict(a.split("=", 1) for a in app["command"][2:])
    assert app["command"][:2] == ["classmood", "app"]
    image_cmd = _build_script_list("--config.cmd")
    assert dict(zip(image_cmd[2::2], image_cmd[3::2], strict=True)).items() <= flags.items()
    assert flags["--public-url"].endswith("/class")  # deploy/Caddyfile sends /class/* to the hub
    assert flags["--trusted-proxy"] == caddy["networks"]["classmood"]["ipv4_address"]
    assert "@db:5432/" in app["environment"]["DATABASE_URL"] and "CLASSMOOD_PASSWORD_HASH" in app["environment"]
    assert db["environment"]["POSTGRES_DB"] == "classmood" and "ports" not in db
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert "8501/_stcore/health" in " ".join(app["healthcheck"]["test"])
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "{$CLASSMOOD_HUB:app:8502}" in caddyfile and "{$CLASSMOOD_APP:app:8501}" in caddyfile


def _wait_for_port(port: int, proc: subprocess.Popen[str], log: Path, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the container exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"nothing listened on {port} in {seconds:.0f} s: {log.read_text()[-2000:]}")


def test_batch_on_a_ray_cluster_of_containers(runc_ray: Runc, data: Path, clip: Path) -> None:
    """The README's cluster recipe on one machine: a Ray head and a Ray worker, each a container of the
    Ray image with one CPU, share /data (a shared file system across machines); `classmood batch
    --address auto` runs on the head, and each of the two recordings goes to an actor on its own node."""
    (data / "in").mkdir()
    for name in ("lesson1.mp4", "lesson2.mp4"):
        shutil.copy(clip, data / "in" / name)
    port = free_port()
    ray = ["ray", "start", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats", "--block"]
    env = {"RAY_USAGE_STATS_ENABLED": "0"}
    head, head_proc, head_log = runc_ray.start(
        "ray-head", [*ray, "--head", f"--port={port}", "--include-dashboard=false"], env=env, data=data
    )
    worker = None
    try:
        _wait_for_port(port, head_proc, head_log)
        worker, worker_proc, worker_log = runc_ray.start(
            "ray-worker", [*ray, f"--address=127.0.0.1:{port}"], env=env, data=data
        )
        batch = ["classmood", "batch", "/data/in", "--out", "/data/out", "--workers", "2", "--address", "auto"]
        deadline, done = time.time() + 60, None
        while time.time() < deadline:  # until the worker node has joined (2 CPUs in the cluster)
            state = subprocess.run(
                ["runc", "exec", head, "ray", "status"], capture_output=True, text=True, timeout=60
            ).stdout
            if "0.0/2.0 CPU" in state:
                break
            assert worker_proc.poll() is None, worker_log.read_text()[-2000:]
            time.sleep(1)
        done = subprocess.run(["runc", "exec", head, *batch], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        import csv

        rows = list(csv.DictReader((data / "out" / "batch_summary.csv").open()))
        assert sorted(r["recording"].rsplit("/", 1)[-1] for r in rows) == ["lesson1.mp4", "lesson2.mp4"]
        assert {r["status"] for r in rows} == {"done"}, rows
        hosts = {r["worker"].rsplit(":", 1)[0] for r in rows}  # host:pid of the actor that did it
        assert hosts == {head[-60:], worker[-60:]}, rows  # one actor on each node (the container's host name)
        for name in ("lesson1", "lesson2"):
            assert len((data / "out" / name / "faces.csv").read_text().splitlines()) == 1 + 6 * 4
    finally:
        for cid in (worker, head):
            if cid is not None:
                runc_ray.remove(cid)
