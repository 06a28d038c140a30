"""About / model card: what the models are, how accurate per class, their known biases, the legal notice."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from classmood import __version__, words
from classmood.analytics.privacy import DEFAULT_MIN_FACES
from classmood.app import ui
from classmood.labels import EMOTIONS
from classmood.weights.manifest import read_manifest
from classmood.weights.shipped import MODEL_NAMES

st.title("About classmood / model card")
st.error(
    "**Legal notice.** Inferring the emotions of natural persons in education institutions is prohibited in "
    "the EU by the AI Act, Article 5(1)(f) (except for medical or safety reasons). classmood reports "
    "*apparent facial expressions* — how a face looks in a frame — not inner emotional states, and must not "
    "be used to assess, grade or single out students, nor to watch students during tests: AI that monitors and "
    "detects prohibited behaviour of students during tests is high-risk under the AI Act (Annex III, point "
    "3(d)). Use it only with the informed consent of everyone on camera, and only where the law allows it."
)

st.header("What it does")
st.markdown(
    f"""
classmood {__version__} finds faces in each analysed frame (libfacedetection by default), follows them with
pseudonymous track ids that are only valid inside one session, and classifies each face's apparent expression
into the seven FER2013 classes ({", ".join(words.expression(e) for e in EMOTIONS)}). Per moment (5 s by
default) it reports the share of faces showing each expression and a mood score, and flags sudden changes;
and, from each head's apparent orientation, the share of faces facing the screen and looking down.
{words.FACING_EXPLAINED} {words.MOOD_EXPLAINED} {words.k_rule(DEFAULT_MIN_FACES)} (k is set in the sidebar;
the default is {DEFAULT_MIN_FACES}.)

**Privacy:** frames are processed in memory only; no images, crops or embeddings of faces are stored. The
session database holds numbers only (boxes, pseudonymous ids, probabilities, per-bin aggregates).

**Student-side mode** (*Live — students' browsers*): no video of a student reaches this server. Each
student consents on a page that says what is measured; their own browser finds the face (YuNet-s, the
network inside libfacedetection) and reads it with the class's model in onnxruntime-web, and sends only
seven probabilities, whether a face is in view and one number for where the head points (toward the screen,
away, looking down or unclear), once a second. The teacher sees the class under k.
"""
)

st.header("Shipped models")
manifest = read_manifest()
if not manifest:
    st.warning("No model manifest found (classmood/weights/manifest.json).")
else:
    rows = []
    for name, entry in sorted(manifest.items()):
        val = entry.get("val", {})
        # accuracy first: on a narrow screen the long columns are the ones that scroll out of view
        row = {
            "model": name,
            "PublicTest accuracy": 100 * val.get("accuracy", float("nan")),
            "macro-F1": val.get("macro_f1"),
            "parameters (M)": round(entry.get("params", 0) / 1e6, 2),
            "TTA": entry.get("tta", ""),
            "architecture": entry.get("arch", ""),
        }
        rows.append(row)
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={
            "PublicTest accuracy": st.column_config.NumberColumn(format="%.2f %%", width="small"),
            "macro-F1": st.column_config.NumberColumn(format="%.3f", width="small"),
            "model": st.column_config.TextColumn(width="small"),
        },
    )
    distilled = {n: ", ".join(e.get("distilled_from", [])) for n, e in manifest.items() if e.get("distilled_from")}
    if distilled:
        st.caption("Distilled from: " + "; ".join(f"{n} ← {d}" for n, d in sorted(distilled.items())))
    st.markdown("**Per-class recall on FER2013 PublicTest** (share of faces of each true class that are recognised)")
    recall = pd.DataFrame(
        {name: entry.get("val", {}).get("per_class_recall", {}) for name, entry in sorted(manifest.items())}
    ).reindex(list(EMOTIONS))
    recall.index = [words.expression(e) for e in recall.index]
    st.dataframe(recall.style.format("{:.2f}"))
    st.caption(
        "*accurate* holds two networks (the plain CNN and fast's) and returns the mean of their probabilities. "
        "Full training report with confusion matrices: docs/models.md in the repository."
    )

st.header("How a face is read on real video")
st.markdown(
    """
Video-call faces are small, soft, compressed and dimly lit, and a model trained only on FER2013's sharp crops
reads missing detail as a negative expression. The shipped models were therefore fine-tuned on faces sent
through simulated calls (small size, blur, JPEG-style coding, noise, low light and contrast, hands and masks),
and each crop's brightness and contrast is matched to FER2013's before the network sees it. Each model also
carries a **readout**:

- **Calibration**: probabilities are temperature-scaled (fitted on FER2013 PublicTest).
- **Classroom prior**: the training used class weights that make sad, fear and angry look as common as neutral;
  the readout assumes a class where 30 % of faces are at rest (twice FER2013's share) and the other classes
  keep FER2013's proportions. On PublicTest (17 % neutral) this lowers the accuracy a teacher sees by about
  2 points and raises neutral recall by about 12 points.
- **Uncertain**: faces whose top calibrated probability is under the model's threshold, or whose crop has
  almost no detail, are shown as *uncertain*: counted, never folded into an expression.

`classmood bench --robust` measures all of this on FER2013 PublicTest under call degradations; the README has
the figures.
"""
)


for name in MODEL_NAMES:
    try:
        from classmood.expression.model import load_model

        text = load_model(name).readout.in_words()
    except Exception as exc:  # a missing or damaged file is reported, not fatal for the page
        text = f"not available ({exc})."
    st.markdown(f"- **{name}**: {text[0].upper()}{text[1:]}")

st.header("Known limitations and biases")
st.markdown(
    """
- **Training data.** FER2013: ~36 000 web images, 48×48 px greyscale, labelled by crowd-workers, mostly posed or
  staged expressions of adults. Webcam faces in a class (side light, low resolution, glasses, looking at notes)
  differ from it; accuracy on your class will be lower than the test numbers above.
- **Rare and confusable classes.** *Disgust* has few training images (about 1.5 %); *fear* is often read as
  sad or surprise, and *sad* as neutral. Treat those classes with particular caution.
- **Demographic bias.** FER2013's faces are not balanced across age, skin tone, culture or gender, and the
  way expressions are shown differs between people and cultures; no fairness audit has been done.
- **Facing the screen is measured roughly.** On real faces labelled by eye, heads turned away are recognised
  less than half of the time (those turned a little, eyes looking down or aside), faces under ~25 px give
  unreliable angles, and a broad smile can read as looking down. Read the class share over minutes.
- **Expressions are not feelings.** A neutral face may be concentrating; a smile may be politeness. Use the
  class trend over minutes, never one face or one moment, and always together with your own judgement.
"""
)
st.caption(ui.CONSENT_TEXT)
