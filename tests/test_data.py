"""Dataset readers: Kaggle CSV (plain, gz), compact arrays, image folders, and the errors users see."""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np
import pytest

from classmood.data import load_split, load_splits
from classmood.errors import DataError
from tests.conftest import synthetic_faces, write_fer_csv


def test_csv_splits_by_usage(fer_csv: Path) -> None:
    splits = load_splits(fer_csv)
    assert {k: len(v) for k, v in splits.items()} == {"Training": 64, "PublicTest": 21, "PrivateTest": 14}
    images, labels = synthetic_faces(64, 0)
    np.testing.assert_array_equal(splits["Training"].images, images)
    np.testing.assert_array_equal(splits["Training"].labels, labels)


def test_gzipped_csv_equals_plain(tmp_path: Path) -> None:
    plain = load_splits(write_fer_csv(tmp_path / "a.csv", {"Training": 10}))
    gz = load_splits(write_fer_csv(tmp_path / "b.csv.gz", {"Training": 10}, gz=True))
    np.testing.assert_array_equal(plain["Training"].images, gz["Training"].images)


def test_split_name_is_case_insensitive(fer_csv: Path) -> None:
    assert load_split(fer_csv, "privatetest").split == "PrivateTest"


def test_unknown_split_lists_available(fer_csv: Path) -> None:
    with pytest.raises(DataError, match="available: PrivateTest, PublicTest, Training"):
        load_split(fer_csv, "Validation")


def _csv_with_row(tmp_path: Path, row: str) -> Path:
    good = write_fer_csv(tmp_path / "good.csv", {"Training": 3})
    path = tmp_path / "bad.csv"
    path.write_text(good.read_text() + row + "\n")
    return path


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "0," + " ".join(["1"] * 2303) + ",Training",
            r"bad\.csv, row 5: expected 2304 pixel values \(48x48\), found 2303",
        ),
        ("9," + " ".join(["1"] * 2304) + ",Training", r"bad\.csv, row 5: emotion label '9' is not one of 0\.\.6"),
        ("0," + " ".join(["300"] * 2304) + ",Training", r"row 5: pixel values must be 0\.\.255"),
        ("0," + " ".join(["x"] * 2304) + ",Training", r"row 5: pixel value 'x' is not an integer"),
        ("0," + " ".join(["1"] * 2304), r"row 5: expected 3 columns"),
    ],
)
def test_bad_rows_name_file_and_row(tmp_path: Path, row: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_splits(_csv_with_row(tmp_path, row))


def test_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("emotion,pixels\n0," + " ".join(["1"] * 2304) + "\n")
    with pytest.raises(DataError, match=r"two\.csv: not a FER2013 CSV: missing column\(s\) Usage"):
        load_splits(path)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00binary\xff\xfe", b"hello world\n", b""])
def test_non_csv_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"notes\.csv"):
        load_splits(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    full = write_fer_csv(tmp_path / "full.csv.gz", {"Training": 20}, gz=True).read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match=r"cut\.csv\.gz"):
        load_splits(path)


def test_compact_arrays(tmp_path: Path) -> None:
    images, labels = synthetic_faces(12)
    for split, sl in (("training", slice(0, 8)), ("publictest", slice(8, 12))):
        with lzma.open(tmp_path / f"fer2013_{split}.npy.xz", "wb") as fh:
            np.save(fh, images[sl])
    usage = ["Training"] * 8 + ["PublicTest"] * 4
    (tmp_path / "fer2013_labels.csv").write_text(
        "emotion,Usage\n" + "".join(f"{lab},{u}\n" for lab, u in zip(labels, usage, strict=True))
    )
    public = load_split(tmp_path, "PublicTest")
    np.testing.assert_array_equal(public.images, images[8:])
    np.testing.assert_array_equal(public.labels, labels[8:])
    assert set(load_splits(tmp_path)) == {"Training", "PublicTest"}


def test_image_folders_with_synonyms_and_odd_formats(image_folders: Path) -> None:
    with pytest.warns(UserWarning, match=r"skipping 1 images in .*contempt"):
        splits = load_splits(image_folders)
    assert set(splits) == {"train", "test"}
    train = splits["train"]
    assert len(train) == 23  # 21 faces + alpha PNG + 16-bit PNG, contempt skipped
    assert train.images.shape[1:] == (48, 48) and train.images.dtype == np.uint8
    assert train.class_counts()["happy"] == 5
    assert sorted(set(train.labels.tolist())) == list(range(7))


def test_flat_class_folders_are_split_all(image_folders: Path) -> None:
    with pytest.warns(UserWarning):
        splits = load_splits(image_folders / "test")
    assert list(splits) == ["all"] and len(splits["all"]) == 21


def test_folder_without_classes(tmp_path: Path) -> None:
    (tmp_path / "misc").mkdir()
    with pytest.raises(DataError, match="no readable images"):
        load_splits(tmp_path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_splits(tmp_path / "nope.csv")


def test_csv_beside_compact_arrays_supplies_the_splits_they_lack(tmp_path: Path) -> None:
    images, labels = synthetic_faces(8)
    with lzma.open(tmp_path / "fer2013_training.npy.xz", "wb") as fh:
        np.save(fh, images)
    (tmp_path / "fer2013_labels.csv").write_text("emotion,Usage\n" + "".join(f"{lab},Training\n" for lab in labels))
    write_fer_csv(tmp_path / "fer2013.csv.gz", {"Training": 8, "PrivateTest": 7}, gz=True)
    assert set(load_splits(tmp_path)) == {"Training", "PrivateTest"}  # no split named: the complete CSV
    assert len(load_split(tmp_path, "PrivateTest")) == 7
    np.testing.assert_array_equal(load_split(tmp_path, "Training").images, images)
