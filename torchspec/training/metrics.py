"""Metrics beyond loss and accuracy, summed over batches (:class:`Tally`) and finished once.

Classification (CrossEntropyLoss/NLLLoss with class labels; per-position outputs ``(N, C, d...)``
count every position; ``ignore_index`` positions are left out): the confusion matrix (rows: true
class, columns: predicted), per-class accuracy (recall: the share of each true class predicted
right; None for a class absent from the data), macro-F1 (the mean over classes of
2·TP / (2·TP + FP + FN), over the classes that occur as a label or a prediction) and top-5 accuracy
(with more than 5 classes). BCEWithLogitsLoss with one output: the same, for 2 classes (logit > 0).
Regression losses: MAE and RMSE over every output element.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from torchspec.training.config import CLASSIFICATION_LOSSES

__all__ = ["CSV_METRICS", "TOP_K", "Tally"]

TOP_K = 5
# the scalar metrics metrics.csv adds (as val_<name>) when the task has them
CSV_METRICS = ("top5_accuracy", "macro_f1", "mae", "rmse")


class Tally:
    """Running sums for :data:`CSV_METRICS`, per-class accuracy and the confusion matrix."""

    def __init__(self, loss_type: str, ignore_index: int | None = None) -> None:
        self.loss_type, self.ignore = loss_type, ignore_index
        self.confusion: torch.Tensor | None = None  # (C, C) int64 counts
        self.top_hits, self.top_count = 0, 0
        self.abs_sum, self.sq_sum, self.count = 0.0, 0.0, 0

    def add(self, out: torch.Tensor, target: torch.Tensor) -> None:
        """One batch: ``out`` (N, *output) and the loss's ``target``."""
        out = out.detach().float()
        if self.loss_type in CLASSIFICATION_LOSSES and not target.is_floating_point():
            classes = out.shape[1]
            logits = out.movedim(1, -1).reshape(-1, classes)  # (N * positions, C)
            labels = target.reshape(-1)
            if self.ignore is not None:
                keep = labels != self.ignore
                logits, labels = logits[keep], labels[keep]
            self._count(labels, logits.argmax(dim=1), classes)
            if classes > TOP_K:
                top = logits.topk(TOP_K, dim=1).indices
                self.top_hits += int((top == labels[:, None]).any(dim=1).sum())
                self.top_count += labels.numel()
        elif self.loss_type == "BCEWithLogitsLoss":
            if out[0].numel() == 1:  # binary: one logit per sample
                self._count((target.reshape(-1) > 0.5).long(), (out.reshape(-1) > 0).long(), 2)
        elif self.loss_type not in CLASSIFICATION_LOSSES:
            diff = out - target.float().reshape(out.shape)
            self.abs_sum += float(diff.abs().sum())
            self.sq_sum += float((diff * diff).sum())
            self.count += diff.numel()

    def _count(self, labels: torch.Tensor, predicted: torch.Tensor, classes: int) -> None:
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
            return  # the label-range checks report these before training
        cells = torch.bincount(labels.cpu() * classes + predicted.cpu(), minlength=classes * classes)
        counts = cells.reshape(classes, classes)
        self.confusion = counts if self.confusion is None else self.confusion + counts

    def result(self) -> dict[str, Any]:
        """The metrics this task has: scalars, ``per_class_accuracy`` and ``confusion`` (lists)."""
        found: dict[str, Any] = {}
        if self.confusion is not None:
            m = self.confusion.double()
            true, predicted, hits = m.sum(dim=1), m.sum(dim=0), m.diagonal()
            found["per_class_accuracy"] = [
                float(h / t) if t > 0 else None for h, t in zip(hits.tolist(), true.tolist())
            ]
            seen = (true + predicted) > 0
            f1 = 2 * hits / (true + predicted).clamp(min=1)
            found["macro_f1"] = float(f1[seen].mean()) if bool(seen.any()) else None
            found["confusion"] = self.confusion.tolist()
        if self.top_count:
            found["top5_accuracy"] = self.top_hits / self.top_count
        if self.count:
            found["mae"] = self.abs_sum / self.count
            found["rmse"] = math.sqrt(self.sq_sum / self.count)
        return found
