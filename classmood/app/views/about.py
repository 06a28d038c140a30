"""About / model card: what the models are, how accurate per class, their known biases, the legal notice."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from classmood import __version__
from classmood.app import ui
from classmood.inference import ENSEMBLE_MEMBERS
from classmood.labels import EMOTIONS
from classmood.weights_manifest import read_manifest

st.title("About classmood / model card")
st.error(
    "**Legal notice.** Inferring the emotions of natural persons in education institutions is prohibited in "
    "the EU by the AI Act, Article 5(1)(f) (except for medical or safety reasons). classmood reports "
    "*apparent facial expressions* — how a face looks in a frame — not inner emotional states, and must not "
    "be used to assess, grade or single out students. Use it only with the informed consent of everyone on "
    "camera, and only where the law allows it."
)

st.header("What it does")
st.markdown(
    f"""
classmood {__version__} finds faces in each analysed frame (libfacedetection by default), follows them with
pseudonymous track ids that are only valid inside one session, and classifies each face's apparent expression
into the seven FER2013 classes ({", ".join(EMOTIONS)}). Per time bin (5 s by default) it reports the share of
faces showing each expression, a valence score (P(happy) − P(angry, disgust, fear or sad)) and flags sudden
changes. Class numbers are hidden while fewer than *k* faces are present (default 5, set in the sidebar).

**Privacy:** frames are processed in memory only; no images, crops or embeddings of faces are stored. The
session database holds numbers only (boxes, pseudonymous ids, probabilities, per-bin aggregates).
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
        row = {
            "model": name,
            "architecture": entry.get("arch", ""),
            "parameters (M)": round(entry.get("params", 0) / 1e6, 2),
            "test-time augmentation": entry.get("tta", ""),
            "distilled from": ", ".join(entry.get("distilled_from", [])) or "—",
            "PublicTest accuracy": val.get("accuracy"),
            "macro-F1": val.get("macro_f1"),
            "faces": val.get("n"),
        }
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.markdown("**Per-class recall on FER2013 PublicTest** (share of faces of each true class that are recognised)")
    recall = pd.DataFrame(
        {name: entry.get("val", {}).get("per_class_recall", {}) for name, entry in sorted(manifest.items())}
    ).reindex(list(EMOTIONS))
    st.dataframe(recall.style.format("{:.2f}"))
    st.caption(
        f"The *ensemble* model averages {', '.join(ENSEMBLE_MEMBERS)}; accurate_alt ships only for it. "
        "Full training report with confusion matrices: docs/models.md in the repository."
    )

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
- **Expressions are not feelings.** A neutral face may be concentrating; a smile may be politeness. Use the
  class trend over minutes, never one face or one moment, and always together with your own judgement.
"""
)
st.caption(ui.CONSENT_TEXT)
