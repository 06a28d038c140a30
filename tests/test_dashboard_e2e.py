"""What a teacher reads at a glance, in real headless Chromium (issue 23's walk-through, repeated).

``classmood app`` is started as a user would (``tests/test_app_e2e.running_app``: a fresh HOME that must
stay empty, nothing fetched from outside, no Content-Security-Policy violation). The tests upload a
calm real video call (the real-face benchmark's 24-person gallery as a short H.264 clip), open saved
sessions, run a student-side class with three browsers and end it, and check what the pages say:
headline figures first, charts that draw a single 5-s moment, the k a result ran with, plain words
(no column names, no float noise, local times) and flows that finish. Screenshots (1280x800, and
390x844 for a student's phone) go to ``$CLASSMOOD_SCREENSHOTS`` when it is set, for a person to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from classmood.benchmarks.mood import calm_call_clip
from classmood.benchmarks.students import chromium_args, write_y4m
from classmood.classroom import vendor
from tests.test_app_e2e import BLOCKED, CHROMIUM, OUTSIDE, free_port, running_app, watched_page
from tests.test_app_e2e import _wait_for as wait_for
from tests.test_app_logic import camera_frame
from tests.test_pipeline import write_video
from tests.test_vision import gallery

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs the system Chromium at {CHROMIUM}")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install 'classmood[dev]')")

# What a teacher must never read: column names, developer values, float noise, broken plurals.
DEVELOPER_STRINGS = [
    "negative_share",
    "uncertain_share",
    "valence",
    "share_",
    "faces_dropped",
    "negative_jump",
    "suppressed",
    "from_s",
    "start_s",
    "None",
    "0.000000",
    "1 bins",
    "1 faces",
]
K_FIELD = "k for new analyses: hide class numbers below this many faces read"


def plain_words(text: str) -> None:
    """No developer string, no float with more than four decimals, no UTC ISO time."""
    for word in DEVELOPER_STRINGS:
        assert word not in text, word
    assert not re.search(r"\d\.\d{5,}", text), re.search(r"\d\.\d{5,}", text)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text), "an ISO time on the page"


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("CLASSMOOD_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def main_text(page: Any) -> str:
    return str(page.locator("[data-testid=stMain]").inner_text())


def figure(page: Any, label: str) -> str:
    """The value of a headline figure as shown (the line after its label)."""
    found = re.search(rf"(?m)^{re.escape(label)}\s*\n\s*([^\n]+)", main_text(page))
    return found.group(1).strip() if found else ""


def set_k(page: Any, k: int) -> None:
    field = page.get_by_label(K_FIELD, exact=True)
    field.fill(str(k))
    field.press("Enter")
    page.wait_for_timeout(800)


def drawn_charts(page: Any) -> list[float]:
    """For each Vega chart on the page, the share of its pixels that are not background (a blank chart ~0)."""
    import io

    from PIL import Image

    shares = []
    for chart in page.locator("[data-testid=stVegaLiteChart]").all():
        chart.scroll_into_view_if_needed()
        pixels = np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("L"), np.float32)
        shares.append(float((pixels < 235).mean()))
    return shares


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    tmp = tmp_path_factory.mktemp("dashboard")
    db, class_port = tmp / "sessions.db", free_port()
    # three student browsers share this machine's address: allow them their seats
    with running_app(tmp, "--db", str(db), "--class-port", str(class_port), "--per-client", "4") as url:
        yield url, class_port, db


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    y4m = write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", [camera_frame()] * 20)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(y4m), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Pages of fresh browser contexts (a teacher's sidebar starts at its defaults), watched for outside requests."""
    contexts = []

    def make(width: int = 1280, height: int = 800) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        return watched_page(context, 60_000)

    OUTSIDE.clear()
    BLOCKED.clear()
    yield make
    for context in contexts:
        context.close()
    assert OUTSIDE == [], f"the app fetched from outside: {OUTSIDE[:5]}"
    assert BLOCKED == [], f"the app's Content-Security-Policy blocked: {BLOCKED[:3]}"


def upload(page: Any, video: Path) -> None:
    """Upload ``video`` on the Analyse page (already open: a new visit would reset the sidebar) and wait."""
    page.get_by_text("Upload limit:").wait_for()
    page.locator("input[type=file]").set_input_files(str(video))
    page.get_by_role("button", name="Analyse", exact=True).click()
    page.get_by_role("button", name="faces.csv").wait_for(timeout=180_000)
    page.get_by_text("Mood score over time").wait_for()


def test_every_page_has_its_own_address_and_plain_words(app: tuple[str, int, Path], new_page: Any) -> None:
    url, _, _ = app
    page = new_page()
    page.goto(url)
    page.get_by_text("Start with one of these").wait_for()
    screenshot(page, "start")
    for path, marker in [
        ("camera", "Confirm consent above"),
        ("gallery", "Share the window of your video call"),
        ("students", "Open a class for your students"),
        ("analyse", "Upload limit:"),
        ("sessions", "No sessions yet"),
        ("about", "Known limitations and biases"),
    ]:
        page.goto(f"{url}/{path}")
        page.get_by_text(marker).first.wait_for()
        page.wait_for_timeout(500)
        assert page.get_by_text("Page not found").count() == 0, path
        plain_words(main_text(page))
    text = main_text(page)  # the About page: each model's readout said in full, not as a cut-off code
    assert text.count("a face is not read when") == 2 and "T=" not in text and "prior neu" not in text
    assert "faces people call neutral average 0" in text


def test_a_calm_real_call_reads_calm_with_its_headline_first(
    app: tuple[str, int, Path], new_page: Any, tmp_path: Path
) -> None:
    """The issue's calm Zoom-like clip: 24 real people at rest, 4 s, one 5-s moment."""
    url, _, _ = app
    page = new_page()
    page.goto(f"{url}/analyse")
    set_k(page, 3)
    upload(page, calm_call_clip(tmp_path / "calm_call.mp4"))
    screenshot(page, "upload_calm_call")
    mood = figure(page, "Mood score")
    value = float(mood.split("±")[0].replace("−", "-"))
    assert abs(value) <= 0.1, mood  # a calm class reads calm (was -0.44)
    assert "±" in mood  # with its uncertainty
    assert int(figure(page, "Faces present")) >= 15 and figure(page, "Model") == "accurate"
    assert figure(page, "Mostly").startswith("neutral") and figure(page, "Hidden by k") == "0 %"
    assert figure(page, "Faces read").endswith("%")
    # a video call: nearly every head turned to its camera (labelled by eye: 20 of the 22 clear ones)
    facing = figure(page, "Facing the screen")
    assert facing.endswith("%") and int(facing.split()[0]) >= 80, facing
    text = main_text(page)
    assert "Facing the screen over time" in text and "not inattention" in text
    assert text.count("faces people call neutral average 0") == 1  # the mood score, explained once
    assert text.count("at least k = 3 faces read") == 1  # the k rule, said once, saying what it counts
    assert "k for this view (it ran with k = 3)" in text
    plain_words(text)
    drawn = drawn_charts(page)  # mood score, expressions, facing and faces of a single moment: none blank
    assert len(drawn) >= 4 and min(drawn) > 0.01, drawn


def test_a_session_reopens_at_the_k_it_ran_with(app: tuple[str, int, Path], new_page: Any, tmp_path: Path) -> None:
    """A recording of 4 faces analysed at k = 3 (with the fast model) reopens with its numbers, not hidden
    under the sidebar's default 5; lowering k takes a confirmation; the list names each run's model."""
    url, _, _ = app
    page = new_page()
    page.goto(f"{url}/analyse")
    set_k(page, 3)
    model = page.get_by_role("combobox", name="Expression model")
    model.click()
    model.fill("fast")
    model.press("Enter")
    page.wait_for_timeout(800)
    assert model.input_value() == "fast"
    frame, _ = gallery(rows=2, cols=2, face_px=80)
    upload(page, write_video(tmp_path / "four.mp4", [frame] * 30))
    assert figure(page, "Model") == "fast"

    fresh = new_page()  # another visit: the sidebar is back at k = 5
    fresh.goto(f"{url}/sessions")
    fresh.get_by_text("k for this view").first.wait_for()
    fresh.wait_for_timeout(1500)
    text = main_text(fresh)
    # two runs, two models, told apart: the newest opens first, named by its file and its model
    assert "four.mp4" in text and "model fast" in text, text[:600]
    assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d", text)  # a local time
    plain_words(text)
    assert "k for this view (it ran with k = 3)" in text
    assert figure(fresh, "Mostly") not in ("", "—") and figure(fresh, "Mood score") != "—"
    screenshot(fresh, "session_reopened")
    k = fresh.get_by_role("spinbutton", name="k for this view (it ran with k = 3)").first  # the Open tab
    k.fill("2")
    k.press("Enter")
    fresh.get_by_text("Still shown at k = 3").wait_for()  # lowering needs its confirmation
    fresh.get_by_text("Yes, show numbers from as few as 2 faces").click()
    wait_for("the lower k", lambda: "at least k = 2 faces read" in main_text(fresh), timeout=20)
    k.fill("5")
    k.press("Enter")
    wait_for("k = 5 to hide the numbers", lambda: figure(fresh, "Mood score") == "—", timeout=20)
    fresh.get_by_text("no moment had at least 5 faces read").wait_for()
    opened = fresh.get_by_role("combobox", name="Session").first  # the Open tab's session
    opened.click()
    opened.fill("calm_call")
    opened.press("Enter")
    wait_for("the other run, with its own model", lambda: "model accurate" in main_text(fresh), timeout=20)


@pytest.mark.skipif(
    not vendor.installed(), reason="onnxruntime-web not installed (python -m classmood.classroom.vendor)"
)
def test_a_student_side_class_with_three_browsers(app: tuple[str, int, Path], new_page: Any) -> None:
    url, class_port, db = app
    teacher = new_page()
    teacher.goto(f"{url}/students")
    set_k(teacher, 3)
    teacher.get_by_role("button", name="Open a class").click()  # a class nobody joins ...
    teacher.get_by_text("Class code:").wait_for()
    teacher.get_by_role("button", name="End class").click()
    teacher.get_by_text("No student's face was read, so nothing was saved").wait_for()  # ... leaves no session
    teacher.get_by_role("button", name="Open a class").click()  # and the next class opens at once
    teacher.get_by_text("Class code:").wait_for()
    code = re.search(r"Class code: ([A-Z0-9]{6})", main_text(teacher))
    assert code is not None
    join = f"http://localhost:{class_port}/join/{code.group(1)}"
    students = []
    for i in range(3):
        student = new_page(390, 844) if i == 0 else new_page(800, 600)
        student.goto(join)
        student.wait_for_function("() => document.getElementById('classinfo').textContent.length > 0")
        if i == 0:
            screenshot(student, "student_phone")
            notice = student.inner_text("#notice")
            assert "puzzled" not in notice and "surprised" in notice  # only expressions the model has
            assert "faces of at least 3 students read" in student.inner_text("#classinfo")
        student.check("#consent")
        student.click("#start")
        student.wait_for_function("() => classmood.state.phase === 'running' && classmood.state.sent >= 1")
        students.append(student)
    screenshot(students[0], "student_phone_running")
    wait_for("three faces read", lambda: figure(teacher, "Faces now") == "3" and "happy" in figure(teacher, "Mostly"))
    assert figure(teacher, "Students connected") == "3"
    wait_for("a moment of 5 s", lambda: teacher.get_by_text("Mood score over time").count() == 1, timeout=30)
    teacher.wait_for_timeout(1500)
    text = main_text(teacher)
    assert "k for this view (it ran with k = 3)" in text and text.count("at least k = 3 faces read") == 1
    plain_words(text)
    screenshot(teacher, "students_dashboard")
    students[2].click("#leave")  # two left: below k, the class numbers go
    wait_for("numbers hidden below k", lambda: figure(teacher, "Mood score") == "—", timeout=30)
    teacher.get_by_role("button", name="End class").click()
    teacher.get_by_text(f"Class {code.group(1)} ended and was saved as session").wait_for()
    teacher.get_by_role("button", name="Open a class").wait_for()
    assert "Class code:" not in main_text(teacher)
    screenshot(teacher, "students_ended")
    from classmood.store import open_store

    store = open_store(f"sqlite:///{db}")
    try:
        classes = store.list_sessions().query("kind == 'students'")
    finally:
        store.close()
    assert len(classes) == 1 and classes["status"].tolist() == ["finished"]  # the empty class saved nothing


def test_an_app_started_with_no_facing_estimates_no_orientation(new_page: Any, tmp_path: Path) -> None:
    """``classmood app --no-facing``: an upload's headline says facing is off (not hidden by k), and the
    students' page is told to estimate none and does not say it does."""
    import json
    import urllib.request

    class_port = free_port()
    with running_app(tmp_path, "--no-facing", "--class-port", str(class_port), "--db", str(tmp_path / "s.db")) as url:
        page = new_page()
        page.goto(f"{url}/analyse")
        set_k(page, 3)
        upload(page, calm_call_clip(tmp_path / "calm_call.mp4"))
        assert figure(page, "Facing the screen") == "off" and figure(page, "Mostly").startswith("neutral")
        page.get_by_text("Not measured: no head orientation was estimated").wait_for()
        page.goto(f"{url}/students")  # starts the app's student hub
        page.get_by_role("button", name="Open a class").wait_for()
        with urllib.request.urlopen(f"http://127.0.0.1:{class_port}/config.json", timeout=10) as r:
            assert json.load(r)["facing_rule"] is None
