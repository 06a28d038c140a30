"""Training-side helpers (PyTorch): starting from shipped weights, fine-tuning for real video."""
