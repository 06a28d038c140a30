"""Streamlit entry point of the classroom web app: ``classmood app`` runs this file.

Every page gets the legal notice in the sidebar. When the server listens on anything but
localhost, or a password is configured, nothing is shown before the password is entered.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

from classmood.app import auth, ui
from classmood.errors import ClassmoodError

VIEWS = Path(__file__).resolve().parent / "views"


@st.cache_resource(show_spinner=False)
def _icon() -> Any:
    """The tab icon, drawn here and served by this server: Streamlit's ``:material/...`` page icons are
    fetched from Google's font server, and nothing may be fetched from outside."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, 60, 60), fill=(255, 189, 46, 255), outline=(90, 60, 0, 255), width=3)
    draw.ellipse((20, 22, 27, 29), fill=(60, 40, 0, 255))
    draw.ellipse((37, 22, 44, 29), fill=(60, 40, 0, 255))
    draw.line((22, 44, 42, 44), fill=(60, 40, 0, 255), width=4)  # neutral: apparent, not inferred
    return image


st.set_page_config(page_title="classmood", page_icon=_icon(), layout="wide")


@st.cache_resource(show_spinner=False)
def _password_hash(stored: str, plain: str) -> str | None:
    """Once per server process; a plain CLASSMOOD_PASSWORD is hashed here, in memory only."""
    return auth.configured_hash({auth.HASH_ENV: stored, auth.PLAIN_ENV: plain})


def _gate() -> None:
    try:
        stored = _password_hash(os.environ.get(auth.HASH_ENV, ""), os.environ.get(auth.PLAIN_ENV, ""))
    except ClassmoodError as exc:
        st.error(str(exc))
        st.stop()
    address = st.get_option("server.address")
    if stored is None:
        if not auth.is_loopback(address):
            st.error(
                f"This server listens on {address or 'all addresses'} without a password. Start it with "
                "`classmood app`, or set CLASSMOOD_PASSWORD_HASH (classmood app --hash-password)."
            )
            st.stop()
        return
    if st.session_state.get("authenticated"):
        return
    st.title("classmood")
    with st.form("login"):
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            client = auth.client_of(st.context.ip_address, st.context.headers.get("X-Forwarded-For"))
            signed_in, message = auth.sign_in(password, stored, client)  # slower after each wrong one
            if signed_in:
                st.session_state["authenticated"] = True
                st.rerun()
            st.error(message)
    st.stop()


ui.sidebar()
_gate()
# The start page is the default: Streamlit serves the default page at "/" and ignores its url_path, so
# every page that has an address of its own (/camera, /gallery, ...) must not be the default.
pages = [
    st.Page(VIEWS / "home.py", title="Start", icon=":material/home:", url_path="start", default=True),
    st.Page(VIEWS / "camera.py", title="Live — my camera", icon=":material/videocam:", url_path="camera"),
    st.Page(VIEWS / "gallery.py", title="Live — class gallery", icon=":material/grid_view:", url_path="gallery"),
    st.Page(VIEWS / "students.py", title="Live — students' browsers", icon=":material/groups:", url_path="students"),
    st.Page(VIEWS / "analyse.py", title="Analyse a recording", icon=":material/upload_file:", url_path="analyse"),
    st.Page(VIEWS / "sessions.py", title="Sessions", icon=":material/history:", url_path="sessions"),
    st.Page(VIEWS / "about.py", title="About / model card", icon=":material/info:", url_path="about"),
]
st.navigation(pages).run()
