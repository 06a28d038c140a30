"""Which training run each shipped model came from, and its PublicTest metrics (``weights/manifest.json``).

``classmood export --ship NAME`` writes the entry; the report, the model card and the accuracy
regression test read it, so a reported number always belongs to the file that ships.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any


def manifest_path() -> Path:
    return Path(str(resources.files("classmood.weights").joinpath("manifest.json")))


def read_manifest() -> dict[str, Any]:
    path = manifest_path()
    return json.loads(path.read_text()) if path.is_file() else {}


def record_shipped(name: str, entry: dict[str, Any]) -> None:
    manifest = read_manifest()
    manifest[name] = entry
    manifest_path().write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
