"""The classroom web app (``classmood app``): Streamlit pages over the pipeline, kept thin.

The logic lives in plain modules here so it can be tested without a browser: ``live`` (the
analysis worker fed by the webcam or a screen capture), ``auth`` (password and bind-address
rules), ``uploads`` (checking and analysing an uploaded recording) and ``state`` (settings and
the store the pages share). ``main.py`` is the Streamlit entry point; the pages are in ``views/``.
"""
