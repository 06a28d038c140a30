"""The architecture registry: every family the study compared is there and runs on 48x48 grey faces."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="architectures need PyTorch (pip install 'classmood[train]')")

from classmood.errors import ClassmoodError  # noqa: E402
from classmood.models import count_macs, count_params, create_model, list_models, register_model  # noqa: E402

FAMILIES = ["plain_cnn", "dexpression", "mobilenet_v2", "densenet", "resnet18"]


def test_the_five_study_architectures_are_registered() -> None:
    assert set(FAMILIES) <= set(list_models())


@pytest.mark.parametrize("name", sorted(set(list_models())))
def test_every_model_maps_faces_to_seven_logits(name: str) -> None:
    model = create_model(name).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 1, 48, 48) * 255)
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()
    assert count_params(model) > 10_000
    assert count_macs(model) > 1_000_000


def test_macs_count_matches_hand_computation() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(8 * 48 * 48, 7))
    assert count_macs(conv) == 48 * 48 * 8 * 9 + 8 * 48 * 48 * 7


def test_unknown_and_duplicate_names() -> None:
    with pytest.raises(ClassmoodError, match="unknown architecture 'vgg99'"):
        create_model("vgg99")
    with pytest.raises(ValueError, match="registered twice"):
        register_model("plain_cnn")(lambda num_classes: torch.nn.Identity())


def test_model_normalises_raw_pixels_itself() -> None:
    """Inputs are 0..255 pixels: a dark and a bright face must not saturate to the same output."""
    model = create_model("plain_cnn_small").eval()
    with torch.no_grad():
        dark, bright = model(torch.full((1, 1, 48, 48), 10.0)), model(torch.full((1, 1, 48, 48), 240.0))
    assert not torch.allclose(dark, bright)
