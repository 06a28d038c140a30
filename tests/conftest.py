"""Tiny datasets the tests make themselves (no dependency on ../shared)."""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np
import pytest

SHARED_FER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013"


def synthetic_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 48x48 uint8 images whose class is visible (a bright bar whose row depends on the label)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    images = rng.integers(0, 80, size=(n, 48, 48), dtype=np.uint8)
    for i, y in enumerate(labels):
        images[i, 4 + 6 * y : 8 + 6 * y, :] = 220
    return images, labels.astype(np.int64)


def write_fer_csv(path: Path, splits: dict[str, int], seed: int = 0, gz: bool = False) -> Path:
    lines = ["emotion,pixels,Usage"]
    for k, (usage, n) in enumerate(splits.items()):
        images, labels = synthetic_faces(n, seed + k)
        lines += [f"{lab},{' '.join(map(str, img.ravel()))},{usage}" for img, lab in zip(images, labels, strict=True)]
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def fer_csv(tmp_path: Path) -> Path:
    return write_fer_csv(tmp_path / "fer2013.csv", {"Training": 64, "PublicTest": 21, "PrivateTest": 14})


@pytest.fixture
def image_folders(tmp_path: Path) -> Path:
    """root/train/<class>/*.png and root/test/<class>/*.jpg with synonyms, colour, alpha and 16-bit files."""
    root = tmp_path / "faces"
    names = ["Anger", "disgusted", "FEARFUL", "happiness", "sad", "surprised", "neutral"]
    images, labels = synthetic_faces(21)
    for split, ext in (("train", ".png"), ("test", ".jpg")):
        for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
            d = root / split / names[lab]
            d.mkdir(parents=True, exist_ok=True)
            big = cv2.resize(img, (96, 96))
            if i % 3 == 1:
                big = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
            cv2.imwrite(str(d / f"{i}{ext}"), big)
        contempt = root / split / "contempt"
        contempt.mkdir()
        cv2.imwrite(str(contempt / f"c{ext}"), images[0])
    cv2.imwrite(str(root / "train" / "happiness" / "alpha.png"), cv2.cvtColor(images[3], cv2.COLOR_GRAY2BGRA))
    cv2.imwrite(str(root / "train" / "happiness" / "deep.png"), images[10].astype(np.uint16) * 257)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch of plain_cnn_small on 64 synthetic faces: checkpoints, run.json and model.onnx."""
    pytest.importorskip("torch", reason="training needs PyTorch (pip install 'classmood[train]')")
    from classmood.training.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("run")
    csv = write_fer_csv(tmp / "fer.csv", {"Training": 64, "PublicTest": 14})
    cfg = TrainConfig(arch="plain_cnn_small", data=str(csv), out=str(tmp / "out"), epochs=1, batch_size=16, threads=2)
    train(cfg)
    return tmp / "out"
