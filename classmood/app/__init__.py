"""The classroom web app (``classmood app``): Streamlit pages over the pipeline, kept thin.

``main.py`` is the Streamlit entry point and the pages are in ``views/``; ``ui`` holds the pieces
the pages share (notice, settings, consent, the live panel). The plain modules beside them hold no
page logic: ``auth`` (password and bind-address rules), ``uploads`` (checking and analysing an
uploaded recording), ``screenshare`` (the browser's screen-share component), ``server`` (starting
Streamlit). The live worker they drive is ``classmood.live``, beside the pipeline.
"""
