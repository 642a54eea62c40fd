"""The learned labeller: weights shipped as data, applied with numpy alone (pure, no I/O
beyond reading the packaged parameter file once).

A multinomial logistic regression over the named features of ``service.features``:
``predict_proba`` gives P(achievement, problem, plan, other) per unit, ``decide`` turns
those into categories. The parameters are arrays in JSON (label order, feature names,
coefficients, the corpus hash and the cross-validated scores they were selected by), not a
pickle: loading runs no code, and a diff shows what retraining changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

LABELS = ("achievements", "problems", "plans", "other")
FORMAT_VERSION = 1
DEFAULT_PATH = "data/labeller.json"


@dataclass
class Linear:
    """One multinomial logistic regression: named features -> P(label)."""

    feature_names: list[str]
    coef: np.ndarray  # (labels, features)
    intercept: np.ndarray  # (labels,)

    def __post_init__(self) -> None:
        self._index = {n: i for i, n in enumerate(self.feature_names)}

    def matrix(self, rows: Sequence[dict[str, float]]) -> csr_matrix:
        """Sparse feature matrix (a long report has thousands of units and the model tens of
        thousands of features); features the model never saw are ignored."""
        data, cols, ptr = [], [], [0]
        for row in rows:
            for name, value in row.items():
                j = self._index.get(name)
                if j is not None:
                    cols.append(j)
                    data.append(value)
            ptr.append(len(cols))
        return csr_matrix((np.array(data, dtype=np.float64), np.array(cols, dtype=np.int64), np.array(ptr)),
                          shape=(len(rows), len(self.feature_names)))

    def predict_proba(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        z = np.asarray(self.matrix(rows) @ self.coef.T) + self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def to_json(self) -> dict[str, Any]:
        return {"intercept": [round(float(v), 5) for v in self.intercept],
                # one row per feature keeps the file diffable and names every weight
                "weights": {n: [round(float(v), 5) for v in self.coef[:, j]] for j, n in enumerate(self.feature_names)}}

    @classmethod
    def from_json(cls, data: dict[str, Any], n_labels: int) -> Linear:
        names = list(data["weights"])
        coef = np.array([data["weights"][n] for n in names], dtype=np.float64).reshape(len(names), n_labels).T
        return cls(names, coef, np.array(data["intercept"], dtype=np.float64))


@dataclass
class Labeller:
    """A multinomial logistic regression over each unit's named features.

    A second stage that re-read each unit among its neighbours' first-stage probabilities
    (stacking) was measured and dropped: leave-one-document-out it moved micro R/P by
    +0.004/-0.006 and cost the news and feature pages 0.16/0.24 (bench/labeller_cv.py).
    """

    labels: tuple[str, ...]
    stage1: Linear
    second_threshold: float = 1.0  # emit a second category at or above this probability
    min_prob: float = 0.0  # emit nothing when the likeliest category is less likely than this
    families: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    # features that make a unit "other" whatever its weights say (a question, a speaker's name)
    vetoes: tuple[str, ...] = ()
    # the category pairs a unit may carry together; () allows any pair
    second_pairs: tuple[frozenset[str], ...] = ()

    def predict_proba(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """P(label) per unit (rows from ``features.features``), columns in ``labels`` order."""
        if not rows:
            return np.zeros((0, len(self.labels)))
        p = self.stage1.predict_proba(rows)
        vetoed = [i for i, row in enumerate(rows) if any(row.get(v) for v in self.vetoes)]
        if vetoed:
            p[vetoed] = np.eye(len(self.labels))[self.labels.index("other")]
        return p

    def decide(self, proba: np.ndarray) -> list[tuple[str, ...]]:
        """Categories per unit: the most probable one (none when it is "other" or less likely
        than ``min_prob``), plus a second category as likely as ``second_threshold`` when the
        pair is one of ``second_pairs`` (the gold counts a measure and the shortcoming it fixes
        as two claims)."""
        out = []
        for p in proba:
            order = np.argsort(-p)
            if p[order[0]] < self.min_prob:
                out.append(())
                continue
            cats = [self.labels[order[0]]]
            second = self.labels[order[1]]
            if p[order[1]] >= self.second_threshold and self._pair_allowed(cats[0], second):
                cats.append(second)
            out.append(tuple(c for c in cats if c != "other"))
        return out

    def _pair_allowed(self, first: str, second: str) -> bool:
        return first == "other" or not self.second_pairs or frozenset((first, second)) in self.second_pairs

    # ------------------------------------------------------------------ data file
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "labels": list(self.labels),
            "families": list(self.families),
            "second_threshold": self.second_threshold,
            "min_prob": self.min_prob,
            "second_pairs": [sorted(pair) for pair in self.second_pairs],
            "vetoes": list(self.vetoes),
            "meta": self.meta,
            "stage1": self.stage1.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], version: str = "") -> Labeller:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"labeller file format {data.get('format')!r}, this reportsum reads {FORMAT_VERSION}")
        n = len(data["labels"])
        return cls(labels=tuple(data["labels"]), stage1=Linear.from_json(data["stage1"], n),
                   second_threshold=float(data.get("second_threshold", 1.0)),
                   min_prob=float(data.get("min_prob", 0.0)),
                   families=tuple(data.get("families", ())), meta=data.get("meta", {}), version=version,
                   vetoes=tuple(data.get("vetoes", ())),
                   second_pairs=tuple(frozenset(p) for p in data.get("second_pairs", ())))


def dumps(labeller: Labeller) -> str:
    return json.dumps(labeller.to_json(), ensure_ascii=False, indent=0, sort_keys=False) + "\n"


def load(path: str | Path | None = None) -> Labeller:
    """The labeller in ``path``, or the one shipped with the package."""
    if path is None:
        return shipped()
    raw = Path(path).read_bytes()
    return Labeller.from_json(json.loads(raw), version=_version(raw))


@functools.cache
def shipped() -> Labeller:
    raw = resources.files("service").joinpath(DEFAULT_PATH).read_bytes()
    return Labeller.from_json(json.loads(raw), version=_version(raw))


def _version(raw: bytes) -> str:
    # the file's hash names the parameters: it joins meta and the cache/recording keys
    return "lr-" + hashlib.sha256(raw).hexdigest()[:12]
