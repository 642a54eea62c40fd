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

    def matrix(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """Dense feature matrix; features the model never saw are ignored."""
        x = np.zeros((len(rows), len(self.feature_names)), dtype=np.float64)
        for r, row in enumerate(rows):
            for name, value in row.items():
                j = self._index.get(name)
                if j is not None:
                    x[r, j] = value
        return x

    def predict_proba(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        z = self.matrix(rows) @ self.coef.T + self.intercept
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


def context_rows(units: Sequence[Any], proba: np.ndarray, labels: Sequence[str]) -> list[dict[str, float]]:
    """Stage-2 features: what stage 1 thinks of the unit and of everything around it.

    The part of a report a unit sits in is the best evidence of its tense ("深入实施…战略"
    reports work done inside a review and promises it inside a task list), and that part is
    visible as the labels its neighbours get: the mean stage-1 probabilities over the unit's
    sentence, paragraph, section, a window of units around it, and the whole document.
    """
    groups: dict[str, dict[Any, list[int]]] = {"sent": {}, "para": {}, "sec": {}}
    for i, u in enumerate(units):
        groups["sent"].setdefault((u.para, u.sentence_text), []).append(i)
        groups["para"].setdefault(u.para, []).append(i)
        groups["sec"].setdefault(u.context, []).append(i)
    doc = proba.mean(axis=0) if len(proba) else np.zeros(len(labels))
    rows = []
    for i, u in enumerate(units):
        row: dict[str, float] = {}
        means = {
            "unit": proba[i],
            "sent": proba[groups["sent"][(u.para, u.sentence_text)]].mean(axis=0),
            "para": proba[groups["para"][u.para]].mean(axis=0),
            "sec": proba[groups["sec"][u.context]].mean(axis=0),
            "win": proba[max(0, i - WINDOW): i + WINDOW + 1].mean(axis=0),
            "doc": doc,
        }
        for scope, p in means.items():
            for k, label in enumerate(labels):
                row[f"{scope}.{label}"] = float(p[k])
        # a claim that differs from its surroundings ("problem" amid plans) keeps its own voice
        row["unit_is_max"] = float(np.argmax(proba[i]) == np.argmax(means["para"]))
        rows.append(row)
    return rows


WINDOW = 6


@dataclass
class Labeller:
    """Stage 1 reads each unit's own features; stage 2 re-reads it among its neighbours."""

    labels: tuple[str, ...]
    stage1: Linear
    stage2: Linear | None = None
    second_threshold: float = 1.0  # emit a second category at or above this probability
    families: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    version: str = ""

    def predict_proba(self, rows: Sequence[dict[str, float]], units: Sequence[Any] | None = None) -> np.ndarray:
        if not rows:
            return np.zeros((0, len(self.labels)))
        p = self.stage1.predict_proba(rows)
        if self.stage2 is None or units is None:
            return p
        return self.stage2.predict_proba(context_rows(units, p, self.labels))

    def decide(self, proba: np.ndarray) -> list[tuple[str, ...]]:
        """Categories per unit: the most probable one (none when it is "other"), plus a
        second category as likely as ``second_threshold`` (the gold counts a measure and
        the shortcoming it fixes as two claims)."""
        out = []
        for p in proba:
            order = np.argsort(-p)
            cats = [self.labels[order[0]]]
            if p[order[1]] >= self.second_threshold:
                cats.append(self.labels[order[1]])
            out.append(tuple(c for c in cats if c != "other"))
        return out

    # ------------------------------------------------------------------ data file
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "labels": list(self.labels),
            "families": list(self.families),
            "second_threshold": self.second_threshold,
            "meta": self.meta,
            "stage2": self.stage2.to_json() if self.stage2 else None,
            "stage1": self.stage1.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], version: str = "") -> Labeller:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"labeller file format {data.get('format')!r}, this reportsum reads {FORMAT_VERSION}")
        n = len(data["labels"])
        return cls(labels=tuple(data["labels"]), stage1=Linear.from_json(data["stage1"], n),
                   stage2=Linear.from_json(data["stage2"], n) if data.get("stage2") else None,
                   second_threshold=float(data.get("second_threshold", 1.0)),
                   families=tuple(data.get("families", ())), meta=data.get("meta", {}), version=version)


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
