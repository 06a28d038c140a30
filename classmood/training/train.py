"""Training loop: one readable function, every knob a named field of ``TrainConfig``.

Runs on a CUDA GPU when present (bf16 autocast, data and augmentation on the GPU) and on the CPU
otherwise (bf16 autocast where the CPU supports it). Seeded. Writes to ``out``:
``config.json``, ``metrics.jsonl`` (one line per epoch), ``best.pt``/``last.pt`` checkpoints,
``run.json`` (final PublicTest metrics of the best epoch with flip test-time augmentation,
timings, hardware) and ``model.onnx`` (the best checkpoint, exported with its TTA).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from classmood.data import FaceSet, load_splits
from classmood.expression.metrics import classification_metrics
from classmood.expression.speed import cpu_name
from classmood.labels import NUM_CLASSES
from classmood.models import count_macs, count_params, create_model
from classmood.models.label_sets import TWO_LABEL_SETS, split_logits
from classmood.training.augment import AugmentConfig, augment_batch
from classmood.training.degrade import DegradeConfig, degrade_batch
from classmood.training.targets import ferplus_eval_labels, training_targets


@dataclass
class TrainConfig:
    arch: str = "resnet18_lite"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = "../shared/data/fer2013"
    train_split: str = "Training"
    val_split: str = "PublicTest"
    out: str = "runs/default"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1  # peak of the one-cycle schedule (SGD, Nesterov)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_frac: float = 0.2  # share of steps spent ramping up to ``lr``
    label_smoothing: float = 0.1
    # Class imbalance (disgust is 1.5 % of Training): loss weight per class ~ frequency^-power,
    # normalised to mean 1. 0 = plain loss, 1 = full inverse frequency; 0.5 trades a little
    # accuracy for much better disgust/fear recall.
    class_weight_power: float = 0.5
    amp: str = "auto"  # auto | bf16 | off
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # CPU threads for PyTorch (0 = library default)
    seed: int = 0
    limit: int = 0  # use only the first N training images (quick tests); 0 = all
    teacher: list[str] = field(default_factory=list)  # checkpoints to distil from (averaged)
    # Exported models (shipped names such as "accurate" or .onnx paths) whose averaged probabilities on
    # the clean, unaugmented training faces become soft targets, computed once before training. With
    # ``degrade`` on, the student learns to say on a degraded face what the teachers say on the clean one.
    teacher_onnx: list[str] = field(default_factory=list)
    kd_alpha: float = 0.7  # weight of the distillation term
    kd_temperature: float = 4.0
    # Start from the weights of an exported model (a shipped name or an .onnx path) of the same
    # architecture instead of a random initialisation: fine-tuning (training/from_onnx.py).
    init_onnx: str = ""
    freeze_bn: bool = False  # keep batch-norm statistics fixed (needed after init_onnx: they are folded)
    export_onnx: bool = True
    # Wall-clock budget for the whole run (0 = none). From epoch 3 on, every few epochs, the recent
    # epoch time says how many epochs fit, and the one-cycle schedule is re-planned to end there, so a
    # run shared with others on one GPU still anneals fully instead of being cut off mid-schedule.
    time_budget_minutes: float = 0.0
    # Batch mixing (0 = off): mixup blends two faces, cutmix pastes a patch of one onto another; the
    # targets (and soft targets) mix in the same proportion, drawn from Beta(alpha, alpha). With both on,
    # each mixed batch uses one of the two at random; ``mix_prob`` is the share of batches mixed.
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0
    # An exponential moving average of the weights (0 = off; e.g. 0.999). Each epoch both the trained
    # and the averaged weights are scored; the better becomes the epoch's candidate for best.pt.
    ema_decay: float = 0.0
    # What each face is taught (training/targets.py): "fer2013" = its FER2013 label; "ferplus" = the
    # ten FER+ annotators' vote distribution (needs ferplus_votes.csv beside the data), with a share
    # ``ferplus_label_mix`` of the FER2013 label blended in. Contempt votes are dropped or folded into a
    # class; faces without votes keep their FER2013 label or are dropped; not-a-face images are dropped.
    targets: str = "fer2013"
    ferplus_label_mix: float = 0.0
    ferplus_contempt: str = "drop"
    ferplus_missing: str = "fer2013"
    ferplus_drop_not_face: bool = True
    # Which accuracy picks the best epoch: "fer2013" (its labels), "ferplus" (FER+ majority labels of the
    # validation split), "both" (their mean), or "auto" (the labels the run is taught). With simulated
    # calls on, the degraded validation accuracy on the same labels is averaged in.
    select_on: str = "auto"
    # After training, fit a second head on the frozen features to FER+'s unknown + not-a-face vote share
    # (training/unreadable.py); exported as the model's second output ``unreadable``.
    unreadable_head: bool = False
    # Weight of a second seven-way head taught FER2013's own labels beside the main head's targets
    # (models/label_sets.py; 0 = none). The deployed readout never uses it: it answers "what would
    # FER2013's labeller have said", so FER2013 accuracy can be reported (and selected on) without
    # teaching the deployed head FER2013's disagreements with FER+'s annotators.
    fer2013_head: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)  # simulated video calls (data/degrade.py)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Load a recipe file; ``overrides`` (e.g. from CLI flags) win over the file."""
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        raw = dict(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        aug = raw.pop("augment", {})
        if isinstance(aug, dict):
            aug = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()})  # type: ignore[arg-type]
        deg = raw.pop("degrade", {})
        if isinstance(deg, dict):
            deg = DegradeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in deg.items()})  # type: ignore[arg-type]
        return cls(augment=aug, degrade=deg, **raw)


def model_classes(cfg: TrainConfig) -> int:
    """Output width of the network: 7, or 14 with a FER2013-label head beside the main one."""
    if cfg.fer2013_head < 0:
        raise ValueError("fer2013_head is a loss weight: 0 (none) or more")
    return TWO_LABEL_SETS if cfg.fer2013_head > 0 else NUM_CLASSES


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    if cfg.amp == "off":
        return False
    if cfg.amp == "bf16" or device.type == "cuda":
        return True
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def hardware_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_name()}, {torch.get_num_threads()} threads"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(labels: np.ndarray, power: float, dist: np.ndarray | None = None) -> torch.Tensor:
    """Loss weight per class ~ frequency^-power (mean 1 over faces); frequencies from ``dist``'s mass if given."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64) if dist is None else dist.sum(0)
    counts = np.asarray(counts, np.float64).clip(min=1)
    w = counts**-power
    return torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32)


def soft_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy against target distributions, each class's term weighted like ``F.cross_entropy``'s
    ``weight`` (the weighted mean over faces and classes), with label smoothing towards uniform."""
    if smoothing:
        target = target * (1 - smoothing) + smoothing / target.shape[1]
    wt = target * weights
    return -(wt * logits.log_softmax(1)).sum() / wt.sum().clamp(min=1e-12)


def selection_labels(cfg: TrainConfig) -> str:
    """The labels that choose the best epoch: ``select_on`` with "auto" resolved to the run's targets."""
    choice = cfg.targets if cfg.select_on == "auto" else cfg.select_on
    if choice not in ("fer2013", "ferplus", "both"):
        raise ValueError(f"select_on must be auto, fer2013, ferplus or both, not {cfg.select_on!r}")
    return choice


def label_accuracy(labels: np.ndarray | None, probs: np.ndarray) -> float | None:
    """Accuracy on the faces that have a label (``labels >= 0``), or None without labels."""
    if labels is None:
        return None
    has = labels >= 0
    return float((probs[has].argmax(1) == labels[has]).mean()) if has.any() else None


def _head_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A network's deployed logits and its FER2013-label logits (None without that head), as float32."""
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out  # a model with an unreadable head
    main, fer2013 = split_logits(out.float())
    return main, fer2013


@torch.no_grad()
def predict_heads(
    model: nn.Module, images: torch.Tensor, bf16: bool, flip_tta: bool, batch: int = 512
) -> tuple[np.ndarray, np.ndarray | None]:
    """Softmax probabilities of the deployed head and of the FER2013-label head (None without one) for
    uint8 (N, 48, 48) images on the model's device; flip TTA averages x and mirror(x)."""
    model.eval()
    dev = next(model.parameters()).device
    main_out, aux_out = [], []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].to(dev).float().unsqueeze(1)
        views = [x, x.flip(3)] if flip_tta else [x]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            heads = [_head_logits(model, v) for v in views]
        main_out.append(torch.stack([m.softmax(1) for m, _ in heads]).mean(0).cpu())
        if heads[0][1] is not None:
            aux_out.append(torch.stack([a.softmax(1) for _, a in heads if a is not None]).mean(0).cpu())
    return torch.cat(main_out).numpy(), (torch.cat(aux_out).numpy() if aux_out else None)


def predict_probs(model: nn.Module, images: torch.Tensor, bf16: bool, flip_tta: bool, batch: int = 512) -> np.ndarray:
    """Softmax probabilities of the deployed head (``predict_heads``'s first)."""
    return predict_heads(model, images, bf16, flip_tta, batch)[0]


def onnx_soft_targets(cfg: TrainConfig, images: np.ndarray, cache_dir: Path) -> np.ndarray:
    """Averaged probabilities of ``cfg.teacher_onnx`` on ``images`` (N, 48, 48), cached in ``cache_dir``:
    (N, 7), or (N, 14) when every teacher has a FER2013-label head (its probabilities in the last 7).

    The cache key is the teachers' file contents and the images, so a changed model or dataset
    never reuses stale targets.
    """
    import hashlib

    from classmood.expression.model import FER2013_OUTPUT, load_model, resolve_model

    digest = hashlib.sha256(images.tobytes() + b"heads2")
    for name in cfg.teacher_onnx:
        digest.update(resolve_model(name).read_bytes())
    cache = cache_dir / f"teacher_probs_{digest.hexdigest()[:16]}.npy"
    if cache.is_file():
        return np.load(cache)
    models = [load_model(name, precision="float") for name in cfg.teacher_onnx]
    both = all(m.has_fer2013_head for m in models)  # then each graph answers for both heads in one pass
    outs = [m.outputs(images, [m.probs_output, *([FER2013_OUTPUT] if both else [])]) for m in models]
    probs = np.mean([o[m.probs_output] for o, m in zip(outs, models, strict=True)], axis=0)
    if both:
        probs = np.concatenate([probs, np.mean([o[FER2013_OUTPUT] for o in outs], axis=0)], axis=1)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, probs.astype(np.float32))
    return probs.astype(np.float32)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild a model from a checkpoint written by ``train`` (architecture name + settings + weights)."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = create_model(ckpt["arch"], num_classes=ckpt.get("num_classes", NUM_CLASSES), **ckpt["arch_kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    if "unreadable_head" in ckpt:  # fitted after training (training/unreadable.py)
        from classmood.models.unreadable import WithUnreadable

        head = nn.Linear(ckpt["unreadable_head"]["weight"].shape[1], 1)
        head.load_state_dict(ckpt["unreadable_head"])
        model = WithUnreadable(model, head)
    return model.to(device).eval()


def _save_checkpoint(path: Path, model: nn.Module, cfg: TrainConfig, epoch: int, val: dict[str, Any]) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(
        {
            "arch": cfg.arch,
            "arch_kwargs": cfg.arch_kwargs,
            "num_classes": model_classes(cfg),
            "state_dict": state,
            "epoch": epoch,
            "val_accuracy": val["accuracy"],
        },
        path,
    )


# The budget is first checked after epoch 3 (epoch 1 includes start-up: data to the GPU, cuDNN
# autotuning) and again every few epochs, because runs sharing a GPU speed up or slow down as
# others start and finish.
_BUDGET_FIRST_CHECK = 3
_BUDGET_CHECK_EVERY = 4


def _one_cycle(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int, done_steps: int = 0) -> Any:
    """The one-cycle schedule over ``total_steps``, advanced past ``done_steps`` already taken."""
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=cfg.warmup_frac, div_factor=25, final_div_factor=1e3
    )
    if done_steps:
        with warnings.catch_warnings():  # stepping without optimizer steps is the point here
            warnings.simplefilter("ignore")
            for _ in range(done_steps):
                sched.step()
    return sched


# Dense bf16 peak of GPUs these runs meet, to say what share of the chip a run keeps busy
# (training ~ 3 x the forward pass: 6 FLOPs per multiply-accumulate per image).
GPU_BF16_PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}


def gpu_share(device: torch.device, macs: int, images_per_s: float) -> float | None:
    """Share of the GPU's bf16 peak used by training at ``images_per_s`` (None on the CPU or an unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    peak = next((v for k, v in GPU_BF16_PEAK_FLOPS.items() if k in name), None)
    return 6.0 * macs * images_per_s / peak if peak else None


def mix_batch(
    x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Mixup or cutmix of a batch with a shuffled copy of itself: (mixed x, partner order or None, lam).

    The loss is then ``lam * loss(y) + (1 - lam) * loss(y[perm])``; ``perm`` is None when this batch
    is not mixed. Cutmix's ``lam`` is the share of pixels kept, after clipping the box to the image.
    The per-batch numbers (whether, which, lam, the box) come from the seeded host generator ``rng``:
    drawing them on the GPU would make every step wait for the device to hand them back.
    """
    kinds = [k for k, a in (("mixup", cfg.mixup_alpha), ("cutmix", cfg.cutmix_alpha)) if a > 0]
    if not kinds or rng.random() >= cfg.mix_prob:
        return x, None, 1.0
    kind = kinds[int(rng.integers(len(kinds)))]
    alpha = cfg.mixup_alpha if kind == "mixup" else cfg.cutmix_alpha
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(len(x), device=x.device, generator=gen)
    if kind == "mixup":
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[-2:]
    cut = math.sqrt(1 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y1, y2 = max(0, cy - ch // 2), min(h, cy + ch // 2)
    x1, x2 = max(0, cx - cw // 2), min(w, cx + cw // 2)
    out = x.clone()
    out[..., y1:y2, x1:x2] = x[perm][..., y1:y2, x1:x2]
    return out, perm, 1 - (y2 - y1) * (x2 - x1) / (h * w)


def _mixed(t: torch.Tensor, idx: torch.Tensor, perm: torch.Tensor | None, lam: float) -> torch.Tensor:
    """Per-face targets ``t[idx]`` of a batch, mixed like its faces when the batch is mixed."""
    return t[idx] if perm is None else lam * t[idx] + (1 - lam) * t[idx][perm]


def _label_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    perm: torch.Tensor | None,
    lam: float,
    weights: torch.Tensor,
    smoothing: float,
) -> torch.Tensor:
    """Weighted cross-entropy on one label per face, mixed like the batch's faces when it is mixed."""
    loss = F.cross_entropy(logits, y, weight=weights, label_smoothing=smoothing)
    if perm is None:
        return loss
    return lam * loss + (1 - lam) * F.cross_entropy(logits, y[perm], weight=weights, label_smoothing=smoothing)


def _fer2013_head_loss(
    logits13: torch.Tensor,
    y13: torch.Tensor,
    perm: torch.Tensor | None,
    lam: float,
    weights13: torch.Tensor,
    t13_logp: torch.Tensor | None,
    cfg: TrainConfig,
) -> torch.Tensor:
    """The FER2013-label head's loss: cross-entropy on FER2013's labels (mixed like the batch), blended
    with distillation from the teachers' FER2013-label heads when there are any (``kd_alpha``)."""
    aux = _label_loss(logits13, y13, perm, lam, weights13, cfg.label_smoothing)
    if t13_logp is None:
        return aux
    return (1 - cfg.kd_alpha) * aux + cfg.kd_alpha * _distillation(logits13, t13_logp, cfg.kd_temperature)


def _mean_log_probs(logits: list[torch.Tensor]) -> torch.Tensor:
    """Log of the teachers' averaged probabilities."""
    return torch.stack([z.float().log_softmax(1) for z in logits]).exp().mean(0).log()


def _distillation(logits: torch.Tensor, t_logp: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's distillation term: KL from the teachers' softened distribution, scaled by T^2."""
    t_soft = (t_logp / temperature).softmax(1)
    kd = F.kl_div((logits / temperature).log_softmax(1), t_soft, reduction="batchmean")
    return kd * temperature**2


def _selection_score(selection: str, val: dict[str, Any], degraded: dict[str, float | None] | None) -> float:
    """One number per candidate: the chosen labels' accuracy, averaged with its degraded twin when present."""
    names = ["fer2013", "ferplus"] if selection == "both" else [selection]
    clean = {"fer2013": val["accuracy"], "ferplus": val["ferplus_accuracy"]}
    parts = [clean[n] for n in names]
    if degraded is not None:
        parts += [degraded[n] for n in names]
    return float(np.mean([p for p in parts if p is not None]))


def _train_prior(labels: np.ndarray, dist: np.ndarray | None, weights: np.ndarray) -> list[float]:
    """The class balance the loss sees: each class's target mass times its loss weight, normalised."""
    mass = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64) if dist is None else dist.sum(0)
    p = np.asarray(mass, np.float64) * weights
    return [round(float(v), 5) for v in p / p.sum()]


def _epochs_within_budget(budget_s: float, started: float, epoch_ends: list[float], window: int = 4) -> int:
    """Total epochs that fit ``budget_s`` at the pace of the last ``window`` epochs (never the first)."""
    done = len(epoch_ends)
    recent = epoch_ends[-min(window + 1, done) :]
    per_epoch = (recent[-1] - recent[0]) / max(1, len(recent) - 1)
    remaining = budget_s - (epoch_ends[-1] - started)
    return max(done + 1, done + int(0.97 * remaining / per_epoch))


@dataclass
class _Data:
    """What a run reads from the dataset: the training faces and targets on the device, the
    validation faces (clean, and through a fixed set of simulated calls when those are on)."""

    train_set: FaceSet
    val_set: FaceSet
    keep: np.ndarray  # the training rows used (FER+'s not-a-face images dropped, ``limit``)
    train_images: np.ndarray  # their images (N, 48, 48) uint8, on the host (the exported teachers read them)
    x_train: torch.Tensor
    y_train: torch.Tensor  # FER2013's labels of those rows
    dist: np.ndarray | None  # FER+ vote distributions of those rows, with ``targets = "ferplus"``
    dist_train: torch.Tensor | None
    x_val: torch.Tensor
    x_val_degraded: torch.Tensor | None
    val_ferplus: np.ndarray | None  # FER+ majority labels of the validation faces (-1: none)
    selection: str  # the labels the best epoch is chosen on


def _load_data(cfg: TrainConfig, splits: dict[str, FaceSet] | None, device: torch.device) -> _Data:
    if splits is None:
        splits = load_splits(cfg.data, [cfg.train_split, cfg.val_split])
    train_set = next(s for s in splits.values() if s.split.lower() == cfg.train_split.lower())
    val_set = next(s for s in splits.values() if s.split.lower() == cfg.val_split.lower())
    targets = training_targets(
        train_set,
        cfg.targets,
        cfg.ferplus_label_mix,
        cfg.ferplus_contempt,
        cfg.ferplus_missing,
        cfg.ferplus_drop_not_face,
    )
    keep = targets.keep[targets.keep < (cfg.limit or len(train_set))]
    selection = selection_labels(cfg)
    val_ferplus = ferplus_eval_labels(val_set)
    if selection != "fer2013" and val_ferplus is None:
        raise ValueError(f"select_on = {selection!r} needs FER+ votes for {val_set.split}")
    if targets.dist is not None:
        print(
            f"targets: FER+ votes for {targets.from_votes:,} faces (FER2013 label mix {cfg.ferplus_label_mix:g}), "
            f"{targets.dropped_not_face} not-a-face and {targets.dropped_missing:,} unvoted faces dropped",
            flush=True,
        )
    dist = None if targets.dist is None else targets.dist[: len(keep)]
    train_images = train_set.images[keep]
    x_val = torch.from_numpy(val_set.images)
    # With simulated calls on, each epoch is also scored on PublicTest through a fixed set of calls, and
    # the kept checkpoint is the best mean of clean and degraded accuracy (a robust model is the goal).
    x_val_degraded: torch.Tensor | None = None
    if cfg.degrade.p > 0:
        val_gen = torch.Generator().manual_seed(1234)
        always = dataclasses.replace(cfg.degrade, p=1.0)
        x_val_degraded = degrade_batch(x_val.float().unsqueeze(1), always, val_gen).round().to(torch.uint8)[:, 0]
    return _Data(
        train_set=train_set,
        val_set=val_set,
        keep=keep,
        train_images=train_images,
        x_train=torch.from_numpy(train_images).to(device),
        y_train=torch.from_numpy(train_set.labels[keep]).to(device),
        dist=dist,
        dist_train=None if dist is None else torch.from_numpy(dist).to(device),
        x_val=x_val,
        x_val_degraded=x_val_degraded,
        val_ferplus=val_ferplus,
        selection=selection,
    )


def _new_model(cfg: TrainConfig, device: torch.device) -> nn.Module:
    """The network to train: fresh from the registry, or carrying an exported model's weights (``init_onnx``)."""
    if cfg.init_onnx:
        from classmood.expression.model import resolve_model
        from classmood.training.from_onnx import load_onnx_weights

        model = load_onnx_weights(resolve_model(cfg.init_onnx), cfg.arch, **cfg.arch_kwargs).to(device)
        width, need = model.head[-1].out_features, model_classes(cfg)  # type: ignore[index, union-attr]
        if width != need:
            raise ValueError(f"{cfg.init_onnx}: {width} outputs, but fer2013_head = {cfg.fer2013_head} needs {need}")
    else:
        model = create_model(cfg.arch, num_classes=model_classes(cfg), **cfg.arch_kwargs).to(device)
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed 48x48 shapes: let cuDNN pick its fastest kernels
    return model


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Nesterov SGD, with no weight decay on BatchNorm weights and biases."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=True,
    )


@dataclass
class _Loss:
    """One batch's loss, every term a named setting: the deployed head on FER2013's labels or FER+'s
    vote distributions; distillation from teacher checkpoints (run live) or exported teachers
    (``soft``, precomputed) with weight ``kd_alpha``; plus the FER2013-label head's own loss."""

    cfg: TrainConfig
    device_type: str
    bf16: bool
    weights: torch.Tensor  # class weights of the deployed head
    weights13: torch.Tensor  # of the FER2013-label head
    dist_train: torch.Tensor | None
    teachers: list[nn.Module]
    soft: torch.Tensor | None  # the exported teachers' probabilities, per training face
    soft13: torch.Tensor | None  # their FER2013-label heads' probabilities, when they have that head

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        idx: torch.Tensor,
        perm: torch.Tensor | None,
        lam: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, deployed logits, the labels training accuracy is counted against)."""
        cfg, soft, soft13 = self.cfg, self.soft, self.soft13
        y13 = y  # FER2013's own labels, for the FER2013-label head
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
            logits, logits13 = split_logits(model(x).float())
            if self.dist_train is not None:  # FER+ vote distributions (mixed faces: mixed distributions)
                tgt = _mixed(self.dist_train, idx, perm, lam)
                loss = soft_cross_entropy(logits, tgt, self.weights, cfg.label_smoothing)
                y = tgt.argmax(1)
            else:
                loss = _label_loss(logits, y, perm, lam, self.weights, cfg.label_smoothing)
            with torch.no_grad():  # the teachers see the mixed faces themselves; no graph through them
                t_heads = [_head_logits(t, x) for t in self.teachers]
            if self.teachers or soft is not None:
                with torch.no_grad():
                    if soft is not None:
                        t_logp = _mixed(soft, idx, perm, lam).clamp(min=1e-8).log()
                    else:
                        t_logp = _mean_log_probs([m for m, _ in t_heads])
                loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * _distillation(logits, t_logp, cfg.kd_temperature)
            if logits13 is not None:
                with torch.no_grad():  # the teachers' FER2013-label heads, precomputed or live
                    t13 = [a for _, a in t_heads if a is not None]
                    t13_logp = (
                        _mixed(soft13, idx, perm, lam).clamp(min=1e-8).log()
                        if soft13 is not None
                        else (_mean_log_probs(t13) if t13 else None)
                    )
                aux = _fer2013_head_loss(logits13, y13, perm, lam, self.weights13, t13_logp, cfg)
                loss = loss + cfg.fer2013_head * aux
        return loss, logits, y


def _loss_for(cfg: TrainConfig, data: _Data, out: Path, device: torch.device, bf16: bool) -> _Loss:
    """The loss with its class weights and teachers (checkpoints loaded, exported teachers' targets computed)."""
    teachers = [load_checkpoint(p, device) for p in cfg.teacher]
    soft: torch.Tensor | None = None
    if cfg.teacher_onnx:
        soft = torch.from_numpy(onnx_soft_targets(cfg, data.train_images, out.parent / "_teacher_cache")).to(device)
    soft13: torch.Tensor | None = None
    if soft is not None and soft.shape[1] == TWO_LABEL_SETS:
        soft, soft13 = soft[:, :NUM_CLASSES], soft[:, NUM_CLASSES:]
    labels = data.train_set.labels[data.keep]
    return _Loss(
        cfg,
        device.type,
        bf16,
        weights=class_weights(labels, cfg.class_weight_power, data.dist).to(device),
        weights13=class_weights(labels, cfg.class_weight_power).to(device),
        dist_train=data.dist_train,
        teachers=teachers,
        soft=soft,
        soft13=soft13,
    )


@dataclass
class _Epoch:
    """What one pass over the training faces did."""

    started: float
    seconds: float
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    lr: float = 0.0  # the learning rate of its last step


def _train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    ema: torch.optim.swa_utils.AveragedModel | None,
    loss_fn: _Loss,
    data: _Data,
    cfg: TrainConfig,
    gen: torch.Generator,
    mix_rng: np.random.Generator,
    desc: str,
) -> _Epoch:
    """One pass in a seeded order: augment, simulate calls, mix, step, and update the averaged weights."""
    model.train()
    if cfg.freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
    t0 = time.time()
    x_train = data.x_train
    order = torch.randperm(len(x_train), device=x_train.device, generator=gen)
    stats = _Epoch(started=t0, seconds=0.0, lr=cfg.lr)
    steps = math.ceil(len(x_train) / cfg.batch_size)
    bar = tqdm(
        range(steps), desc=desc, leave=False, mininterval=5, disable=os.environ.get("CLASSMOOD_NO_PROGRESS") == "1"
    )
    for step in bar:
        idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        x = augment_batch(x_train[idx].float().unsqueeze(1), cfg.augment, gen)
        x = degrade_batch(x, cfg.degrade, gen)
        x, perm, lam = mix_batch(x, cfg, gen, mix_rng)
        x = x.contiguous(memory_format=torch.channels_last)
        loss, logits, y = loss_fn(model, x, data.y_train[idx], idx, perm, lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        stats.lr = opt.param_groups[0]["lr"]  # what this step used (the scheduler moves on below)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        stats.loss_sum += float(loss.detach()) * len(y)
        stats.correct += int((logits.argmax(1) == y).sum())
        stats.seen += len(y)
        bar.set_postfix(
            loss=f"{stats.loss_sum / stats.seen:.3f}", acc=f"{stats.correct / stats.seen:.3f}", refresh=False
        )
    stats.seconds = time.time() - t0
    return stats


Scored = tuple[float, str, nn.Module, dict[str, Any], dict[str, float | None] | None]


def _score_candidates(candidates: list[tuple[str, nn.Module]], data: _Data, bf16: bool) -> list[Scored]:
    """Each candidate's (selection score, kind, network, validation metrics, degraded accuracies); FER2013's
    labels are scored on the head taught them where the network has one, FER+'s on the deployed head."""
    scored: list[Scored] = []
    for kind, candidate in candidates:
        p_val, p13_val = predict_heads(candidate, data.x_val, bf16, flip_tta=False)
        c_val = classification_metrics(data.val_set.labels, p_val if p13_val is None else p13_val)
        c_val["ferplus_accuracy"] = label_accuracy(data.val_ferplus, p_val)
        c_degraded: dict[str, float | None] | None = None
        if data.x_val_degraded is not None:
            p_deg, p13_deg = predict_heads(candidate, data.x_val_degraded, bf16, flip_tta=False)
            c_degraded = {
                "fer2013": label_accuracy(data.val_set.labels, p_deg if p13_deg is None else p13_deg),
                "ferplus": label_accuracy(data.val_ferplus, p_deg),
            }
        scored.append((_selection_score(data.selection, c_val, c_degraded), kind, candidate, c_val, c_degraded))
    return scored


def _epoch_row(epoch: int, stats: _Epoch, scored: list[Scored], best: Scored, share: float | None, ema: bool) -> dict:
    """The epoch's line of metrics.jsonl."""
    score, weights_kind, _, val, degraded = best
    degraded_accuracy = None if degraded is None else degraded["fer2013"]
    return {
        "epoch": epoch,
        "train_loss": stats.loss_sum / stats.seen,
        "train_accuracy": stats.correct / stats.seen,
        "val_accuracy": val["accuracy"],
        "val_macro_f1": val["macro_f1"],
        **({} if degraded_accuracy is None else {"val_degraded_accuracy": degraded_accuracy}),
        **({} if val["ferplus_accuracy"] is None else {"val_ferplus_accuracy": val["ferplus_accuracy"]}),
        **(
            {}
            if degraded is None or degraded["ferplus"] is None
            else {"val_degraded_ferplus_accuracy": degraded["ferplus"]}
        ),
        "selection_score": score,
        "lr": stats.lr,
        "epoch_seconds": time.time() - stats.started,
        "images_per_s": stats.seen / stats.seconds,
        **({} if share is None else {"gpu_bf16_share": share}),
        **({} if not ema else {"weights": weights_kind, "val_accuracy_trained": scored[0][3]["accuracy"]}),
    }


def _epoch_line(
    cfg: TrainConfig, epochs: int, row: dict[str, Any], best: Scored, share: float | None, ema: bool
) -> str:
    """The epoch's line on the console."""
    _, weights_kind, _, val, degraded = best
    degraded_accuracy = None if degraded is None else degraded["fer2013"]
    return (
        f"{cfg.arch} epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.3f} train {row['train_accuracy']:.3f} "
        f"{cfg.val_split} {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.3f}"
        + ("" if degraded_accuracy is None else f" degraded {degraded_accuracy:.4f}")
        + ("" if val["ferplus_accuracy"] is None else f" FER+ {val['ferplus_accuracy']:.4f}")
        + ("" if degraded is None or degraded["ferplus"] is None else f" (degraded {degraded['ferplus']:.4f})")
        + ("" if not ema else f" [{weights_kind} weights]")
        + f" ({row['epoch_seconds']:.0f}s, {row['images_per_s']:,.0f} img/s"
        + ("" if share is None else f", {share:.1%} of the GPU's bf16 peak")
        + ")"
    )


def _final_metrics(model: nn.Module, data: _Data, bf16: bool) -> dict[str, Any]:
    """The best checkpoint on the validation faces with flip TTA, on both label sets."""
    p_final, p13_final = predict_heads(model, data.x_val, bf16, flip_tta=True)
    labels = data.val_set.labels
    final = classification_metrics(labels, p_final if p13_final is None else p13_final)
    if p13_final is not None:  # what the deployed head scores on FER2013's labels, for comparison
        final["deployed_head_accuracy"] = label_accuracy(labels, p_final)
    if data.val_ferplus is not None:
        has = data.val_ferplus >= 0
        final["ferplus"] = classification_metrics(data.val_ferplus[has], p_final[has])
    return final


def _with_unreadable(model: nn.Module, data: _Data, out: Path, device: torch.device) -> tuple[nn.Module, dict]:
    """The best network with the unreadable head fitted on its features (saved into best.pt), and its report."""
    from classmood.models.unreadable import WithUnreadable
    from classmood.training.unreadable import fit_unreadable_head, unreadable_report

    model = WithUnreadable(model, fit_unreadable_head(model, data.train_set).to(device))
    report = unreadable_report(model, data.val_set)
    ckpt = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    ckpt["unreadable_head"] = {k: v.detach().cpu() for k, v in model.unreadable.state_dict().items()}
    torch.save(ckpt, out / "best.pt")
    print(f"unreadable head on {data.val_set.split}: " + ", ".join(f"{k} {v:.3g}" for k, v in report.items()))
    return model, report


@dataclass
class _Fit:
    """What the epochs produced: the best epoch's validation metrics (no TTA) and which weights won."""

    best: dict[str, Any]
    best_epoch: int
    best_weights: str  # "ema" when the averaged weights scored better that epoch
    epochs: int  # run (a time budget may have cut the plan)
    seconds: float


def _fit(cfg: TrainConfig, model: nn.Module, data: _Data, loss_fn: _Loss, out: Path, macs: int) -> _Fit:
    """The epochs: train, score the trained and the averaged weights, keep the best in best.pt, log
    each epoch to metrics.jsonl, and fit the plan to ``time_budget_minutes`` as the pace shows."""
    device = data.x_train.device
    steps_per_epoch = math.ceil(len(data.x_train) / cfg.batch_size)
    opt = _optimizer(model, cfg)
    sched = _one_cycle(opt, cfg, cfg.epochs * steps_per_epoch)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    mix_rng = np.random.default_rng(cfg.seed)  # batch mixing's per-batch numbers, drawn on the host
    ema: torch.optim.swa_utils.AveragedModel | None = None
    if cfg.ema_decay > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True
        )
    log = open(out / "metrics.jsonl", "w")  # noqa: SIM115 - open for the whole run
    fit = _Fit(best={"accuracy": -1.0}, best_epoch=0, best_weights="trained", epochs=cfg.epochs, seconds=0.0)
    best_score, epoch = -1.0, 0
    started = time.time()
    epoch_ends: list[float] = []
    while epoch < fit.epochs:
        epoch += 1
        desc = f"{cfg.arch} epoch {epoch}/{fit.epochs}"
        stats = _train_epoch(model, opt, sched, ema, loss_fn, data, cfg, gen, mix_rng, desc)
        candidates = [("trained", model)] + ([("ema", ema.module)] if ema is not None else [])
        scored = _score_candidates(candidates, data, loss_fn.bf16)
        chosen = max(scored, key=lambda s: s[0])
        share = gpu_share(device, macs, stats.seen / stats.seconds)
        row = _epoch_row(epoch, stats, scored, chosen, share, ema is not None)
        log.write(json.dumps(row) + "\n")
        log.flush()
        print(_epoch_line(cfg, fit.epochs, row, chosen, share, ema is not None), flush=True)
        score, kind, network, val, _ = chosen
        if score > best_score:
            fit.best, fit.best_epoch, fit.best_weights, best_score = val, epoch, kind, score
            _save_checkpoint(out / "best.pt", network, cfg, epoch, val)
        epoch_ends.append(time.time())
        check = epoch >= _BUDGET_FIRST_CHECK and (epoch - _BUDGET_FIRST_CHECK) % _BUDGET_CHECK_EVERY == 0
        if cfg.time_budget_minutes > 0 and check and epoch < fit.epochs:
            fitted = _epochs_within_budget(cfg.time_budget_minutes * 60, started, epoch_ends)
            if fitted < fit.epochs:
                budget = cfg.time_budget_minutes
                print(f"{cfg.out}: {fit.epochs} epochs do not fit {budget} min; running {fitted}", flush=True)
                fit.epochs = fitted
                sched = _one_cycle(opt, cfg, fitted * steps_per_epoch, done_steps=epoch * steps_per_epoch)
    _save_checkpoint(out / "last.pt", model, cfg, fit.epochs, val)
    log.close()
    fit.seconds = time.time() - started
    return fit


def train(cfg: TrainConfig, splits: dict[str, FaceSet] | None = None) -> dict[str, Any]:
    """Train one model as configured and return the run summary (also written to ``out/run.json``)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    bf16 = use_bf16(cfg, device)
    data = _load_data(cfg, splits, device)
    model = _new_model(cfg, device)
    loss_fn = _loss_for(cfg, data, out, device, bf16)
    params, macs = count_params(model), count_macs(model)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    fit = _fit(cfg, model, data, loss_fn, out, macs)

    model = load_checkpoint(out / "best.pt", device)
    final = _final_metrics(model, data, bf16)
    unreadable: dict[str, Any] = {}
    if cfg.unreadable_head:
        model, unreadable = _with_unreadable(model, data, out, device)
    summary = {
        "name": out.name,
        "arch": cfg.arch,
        "arch_kwargs": cfg.arch_kwargs,
        "params": params,
        "macs": macs,
        "best_epoch": fit.best_epoch,
        "best_weights": fit.best_weights,
        "epochs": fit.epochs,
        "epochs_planned": cfg.epochs,
        "val_split": cfg.val_split,
        "val_no_tta": {k: fit.best[k] for k in ("accuracy", "macro_f1")},
        "val": final,
        "tta": "flip",
        "train_seconds": fit.seconds,
        "hardware": hardware_name(device),
        "bf16": bf16,
        "torch": torch.__version__,
        "distilled_from": cfg.teacher + cfg.teacher_onnx,
        "targets": cfg.targets,
        "fer2013_head": cfg.fer2013_head,
        **({"unreadable": unreadable} if unreadable else {}),
        "selected_on": data.selection,
        "train_faces": len(data.keep),
        # The class balance the model learnt (mean target under the class weights): what a readout's
        # deployment prior divides by (expression/calibrate.py).
        "train_prior": _train_prior(data.train_set.labels[data.keep], data.dist, loss_fn.weights.cpu().numpy()),
        "initialised_from": cfg.init_onnx,
        "config": dataclasses.asdict(cfg),
    }
    _finish(cfg, out, model, summary)
    return summary


def _finish(cfg: TrainConfig, out: Path, model: nn.Module, summary: dict[str, Any]) -> None:
    """Export the best network with its TTA (``export_onnx``), write run.json and say the result."""
    final = summary["val"]
    if cfg.export_onnx:
        from classmood.training.export import export_onnx

        export_onnx(
            model.cpu().float(),
            out / "model.onnx",
            tta="flip",
            metadata={
                "name": out.name,
                "arch": cfg.arch,
                "val_accuracy": f"{final['accuracy']:.4f}",
                "classmood.targets": cfg.targets,
                "classmood.train_prior": json.dumps(summary["train_prior"]),
            },
        )
    (out / "run.json").write_text(json.dumps(summary, indent=2))
    recall = ", ".join(f"{k} {v:.2f}" for k, v in final["per_class_recall"].items())
    plus = "" if "ferplus" not in final else f", FER+ majority {final['ferplus']['accuracy']:.4f}"
    print(
        f"{cfg.arch}: best epoch {summary['best_epoch']}, {cfg.val_split} accuracy {final['accuracy']:.4f}{plus} "
        f"with flip TTA, macro-F1 {final['macro_f1']:.3f}, {summary['train_seconds'] / 60:.1f} min on "
        f"{summary['hardware']}; recall: {recall}",
        flush=True,
    )
