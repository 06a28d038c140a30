"""Architectures for 48x48 grey faces behind one registry (needs PyTorch: ``pip install classmood[train]``)."""

from classmood.models import densenet, dexpression, mobilenet, plain_cnn, resnet  # noqa: F401  (registers)
from classmood.models.profile import count_macs, count_params
from classmood.models.registry import create_model, list_models, model_factory, register_model

__all__ = ["count_macs", "count_params", "create_model", "list_models", "model_factory", "register_model"]
