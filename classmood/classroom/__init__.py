"""Student-side mode: each student's browser reads its own face and sends only numbers.

``protocol`` (what a student may send), ``room`` (one live class: the k rule over the latest
update of each student), ``hub`` (the web server: student page, models, onnxruntime-web, the
WebSocket endpoints), ``vendor`` (onnxruntime-web from the npm registry at install time) and
``static/`` (the student page). Processing here knows no Streamlit; the teacher's page in the
app reads a ``Room`` through the hub running in the same process.
"""
