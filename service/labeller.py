"""The learned labeller: parameters shipped as data, applied with numpy and scipy alone
(pure, no I/O beyond reading the packaged parameter file once).

A multinomial logistic regression over TF-IDF character n-grams of the unit, its sentence
and its section path, plus a few named dense features (``service.features``).
``predict_proba`` maps a document's features to one sparse matrix and multiplies it once by
the weights; ``decide`` turns P(achievement, problem, plan, other) into categories. The
parameters are data in JSON (label order, the vocabulary with its idf, the weights as
float32 arrays, the corpus hash and the validated scores), not a pickle: loading runs no
code; the vocabulary is text and each label's strongest features are listed by name.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse

from service.features import DENSE_NAMES, NEAR_PART, DocFeatures, gram_keys, gram_text

LABELS = ("achievements", "problems", "plans", "other")
FORMAT_VERSION = 2
DEFAULT_PATH = "data/labeller.json"
# n-gram families and their weight in the feature vector (the sentence and the paragraph's
# lead count half: they are context, the unit is the claim); a labeller file uses the
# families its vocabulary lists
FAMILY_WEIGHTS = {"u": 1.0, "s": 0.5, "h": 1.0, "p": 0.5}


_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: a multiply and a shift


@dataclass
class Vocabulary:
    """One n-gram family's columns: sorted keys and their idf (sklearn's smooth idf).

    Keys are looked up in an open-addressing hash table built once per labeller (a gather or
    two per occurrence, vectorised): a binary search over the vocabulary cost 100 ms for the
    half million n-grams of a 200,000-character report."""

    keys: np.ndarray  # int64, sorted
    idf: np.ndarray
    weight: float

    def __post_init__(self) -> None:
        # at most 1/8 full: a key outside the vocabulary (most of a report's n-grams) meets an
        # empty slot within a probe or two; at 1/4 full long runs took 20 rounds of probing
        # (twice the lookup time for ~4 MB of slots per family)
        bits = max(int(8 * len(self.keys)).bit_length(), 4)
        self._shift = np.uint64(64 - bits)
        self._slots = np.full(1 << bits, -1, dtype=np.int64)  # column index, -1: empty
        pending = np.arange(len(self.keys))
        home = self._home(self.keys)
        self._probes = 0
        while len(pending):  # linear probing, one round per probe distance
            slot = (home[pending] + self._probes) & (len(self._slots) - 1)
            free = self._slots[slot] == -1
            slot, cand = slot[free], pending[free]
            first = np.unique(slot, return_index=True)[1]  # one key per free slot this round
            self._slots[slot[first]] = cand[first]
            placed = np.zeros(len(self.keys), bool)
            placed[cand[first]] = True
            pending = pending[~placed[pending]]
            self._probes += 1

    def _home(self, keys: np.ndarray) -> np.ndarray:
        # views, not copies: the same bits as astype, and the home slot is below 2**63
        home = np.asarray(keys, dtype=np.int64).view(np.uint64) * _HASH
        home >>= self._shift
        return home.view(np.int64)

    def columns(self, keys: np.ndarray) -> np.ndarray:
        """Column of each key, -1 for keys outside the vocabulary."""
        home = self._home(keys)
        if not self._probes:  # an empty vocabulary
            return np.full(len(keys), -1, dtype=np.int64)
        # The first probe reads every key's home slot directly (no index of pending keys to
        # gather through): most keys end there, found or at an empty slot.
        col = self._slots[home]
        hit = col >= 0
        found = hit & (self.keys[np.where(hit, col, 0)] == keys)
        out = np.where(found, col, -1)
        todo = np.flatnonzero(hit & ~found)
        for probe in range(1, self._probes):
            if not len(todo):
                break
            col = self._slots[(home[todo] + probe) & (len(self._slots) - 1)]
            hit = col >= 0
            found = hit.copy()
            found[hit] = self.keys[col[hit]] == keys[todo[hit]]
            out[todo[found]] = col[found]
            todo = todo[hit & ~found]  # an empty slot ends the search
        return out

    def matrix(self, g: Any, expand: bool = True) -> sparse.csr_matrix:
        """TF-IDF rows, l2-normalised and weighted, one per unit (numpy, no Python loop);
        ``expand=False``: one per sentence or section, as ``g.of_unit`` indexes them."""
        n = len(self.keys)
        col = self.columns(g.keys)
        ok = col >= 0
        # distinct (row, column) pairs in row-major order, with their counts: canonical CSR
        pairs = g.rows[ok] * max(n, 1) + col[ok]
        if g.n_rows * max(n, 1) <= np.iinfo(np.int32).max:
            pairs = pairs.astype(np.int32)  # same order and counts; 32-bit keys sort twice as fast
        pair, tf = np.unique(pairs, return_counts=True)
        rows, cols = pair // max(n, 1), pair % max(n, 1)
        data = tf * self.idf[cols]
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=g.n_rows))
        data *= self.weight / np.where(norms > 0, norms, 1.0)[rows]
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=g.n_rows))))
        m = sparse.csr_matrix((data, cols, indptr), shape=(g.n_rows, n))
        return m[g.of_unit] if g.of_unit is not None and expand else m


@dataclass
class Vectorizer:
    """Features of ``service.features`` -> columns: the n-gram vocabularies, then the dense
    features this labeller uses."""

    vocab: dict[str, Vocabulary]
    dense: tuple[str, ...]  # names from features.DENSE_NAMES, in column order

    def __post_init__(self) -> None:
        self._dense_idx = np.array([DENSE_NAMES.index(n) for n in self.dense], dtype=np.int64)

    @property
    def n_features(self) -> int:
        return sum(len(v.keys) for v in self.vocab.values()) + len(self.dense)

    def transform(self, f: DocFeatures) -> sparse.csr_matrix:
        blocks = [v.matrix(f.grams[name]) for name, v in self.vocab.items()]
        blocks.append(sparse.csr_matrix(f.dense[:, self._dense_idx]))
        return sparse.hstack(blocks, format="csr")

    def scores(self, f: DocFeatures, weights: np.ndarray) -> np.ndarray:
        """``transform(f) @ weights`` (``weights``: features x labels) without building it: a
        sentence's (or section's) n-grams are multiplied once and the product shared by its
        units, not copied to every unit."""
        z = f.dense[:, self._dense_idx] @ weights[self.n_features - len(self.dense):]
        at = 0
        for name, v in self.vocab.items():
            g = f.grams[name]
            part = np.asarray(v.matrix(g, expand=False) @ weights[at: at + len(v.keys)])
            z += part[g.of_unit] if g.of_unit is not None else part
            at += len(v.keys)
        return z

    def feature_names(self) -> list[str]:
        return [f"{name}:{gram_text(int(k))}" for name, v in self.vocab.items() for k in v.keys] + list(self.dense)


@dataclass(frozen=True)
class PartPrior:
    """What the part of the report a unit sits in says about its category, applied after
    the n-grams (issue 25: a review written in the imperative, "深化公立医院人事制度改革", read
    as plans under "2016年…工作总结" because the verbs outvoted the section n-grams).

    ``log_ratio[k, c]`` = log P(category c | claim in a part of kind k) - log P(c | claim), from
    the training documents; ``weight`` (0 = off) is chosen by the grouped validation. Only the
    categories are re-weighed: P(other) stays as the model said, since a part says which
    category a claim is, not whether a sentence is one."""

    log_ratio: np.ndarray  # (len(NEAR_PART), categories), categories in label order without "other"
    weight: float

    def apply(self, proba: np.ndarray, f: DocFeatures, labels: Sequence[str]) -> np.ndarray:
        if not self.weight:
            return proba
        near = f.dense[:, [DENSE_NAMES.index(n) for n in NEAR_PART]]
        return reweigh(proba, self.weight * (near @ self.log_ratio), labels)

    def to_json(self) -> dict[str, Any]:
        return {"weight": self.weight, "parts": list(NEAR_PART),
                "log_ratio": [[round(float(v), 4) for v in row] for row in self.log_ratio]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartPrior:
        if list(data["parts"]) != list(NEAR_PART):
            raise ValueError(f"labeller part prior over {data['parts']}, this reportsum reads {list(NEAR_PART)}")
        return cls(np.array(data["log_ratio"], dtype=np.float64), float(data["weight"]))


def reweigh(proba: np.ndarray, shift: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """``proba`` with each row's categories (all labels but "other") multiplied by
    ``exp(shift)`` and renormalised among themselves; P(other) unchanged."""
    cats = [i for i, name in enumerate(labels) if name != "other"]
    z = np.log(np.maximum(proba[:, cats], 1e-300)) + shift
    q = np.exp(z - z.max(axis=1, keepdims=True))
    q *= (proba[:, cats].sum(axis=1) / q.sum(axis=1))[:, None]
    out = proba.copy()
    out[:, cats] = q
    return out


def paragraph_tense(proba: np.ndarray, para: np.ndarray | None, weight: float,
                    labels: Sequence[str]) -> np.ndarray:
    """``proba`` with each unit's log odds of achievement over plan moved ``weight`` of the way
    to its paragraph's mean (the units weighed by how likely each is a claim); P(other),
    P(problem) and the sum P(achievement) + P(plan) unchanged.

    A paragraph mostly speaks in one tense: in a press conference's account of work done,
    "加大心理援助热线建设，强化专业人员队伍培训" read alone as a plan (its verbs are a work
    report's imperatives); pooled with the rest of its paragraph it reads as done. Problems are left
    alone: a review paragraph states its shortcomings beside its achievements (pooling all
    three categories lost problems)."""
    if not weight or para is None or not len(proba):
        return proba
    a, p, o = labels.index("achievements"), labels.index("plans"), labels.index("other")
    diff = np.log(np.maximum(proba[:, a], 1e-300)) - np.log(np.maximum(proba[:, p], 1e-300))
    w = 1.0 - proba[:, o] + 1e-6
    mean = np.bincount(para, weights=w * diff) / np.bincount(para, weights=w)
    moved = diff + weight * (mean[para] - diff)
    both = proba[:, a] + proba[:, p]
    out = proba.copy()
    out[:, a] = both / (1.0 + np.exp(-moved))
    out[:, p] = both - out[:, a]
    return out


@dataclass
class Labeller:
    """A multinomial logistic regression; thresholds decide what is emitted."""

    labels: tuple[str, ...]
    vectorizer: Vectorizer
    coef: np.ndarray  # (labels, features)
    intercept: np.ndarray  # (labels,)
    second_threshold: float = 1.0  # emit a second category at or above this probability
    min_prob: float = 0.0  # emit nothing when the likeliest category is less likely than this
    meta: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    # the category pairs a unit may carry together; () allows any pair
    second_pairs: tuple[frozenset[str], ...] = ()
    part_prior: PartPrior | None = None
    paragraph_weight: float = 0.0  # ``paragraph_tense``'s weight (0: off)

    @functools.cached_property
    def _weights(self) -> np.ndarray:
        """``coef`` transposed, C-contiguous: each family's block is a slice of whole rows, read
        in place by the sparse product (a slice of ``coef.T`` is strided, and scipy copied it,
        ~13 MB, on every call: 1.5 ms of a seed article's 23)."""
        return np.ascontiguousarray(self.coef.T)

    def predict_proba(self, f: DocFeatures) -> np.ndarray:
        """P(label) per unit, columns in ``labels`` order: one sparse product per family, then
        the part prior (if any) re-weighs the categories by the part of the report."""
        if not f.n_units:
            return np.zeros((0, len(self.labels)))
        z = self.vectorizer.scores(f, self._weights) + self.intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        if self.part_prior:
            p = self.part_prior.apply(p, f, self.labels)
        return paragraph_tense(p, f.para, self.paragraph_weight, self.labels)

    def decide(self, proba: np.ndarray) -> list[tuple[str, ...]]:
        """Categories per unit: the most probable one (none when it is "other" or less likely
        than ``min_prob``), plus a second category as likely as ``second_threshold`` when the
        pair is one of ``second_pairs`` (the gold counts a measure and the shortcoming it fixes
        as two claims)."""
        if not len(proba):
            return []
        order = np.argsort(-proba, axis=1, kind="stable")
        rows = np.arange(len(proba))
        top, second = order[:, 0], order[:, 1]
        p_top, p_second = proba[rows, top], proba[rows, second]
        n = len(self.labels)
        allowed = np.array([[self._pair_allowed(self.labels[a], self.labels[b]) for b in range(n)]
                            for a in range(n)])
        # Every row's answer is one of a few tuples: pick its index with array operations and
        # look the tuples up, rather than build one tuple per unit in a Python loop.
        with_second = (p_second >= self.second_threshold) & allowed[top, second]
        code = np.where(p_top < self.min_prob, n * n, top * n + np.where(with_second, second, top))
        return list(map(self._decision_table().__getitem__, code.tolist()))

    def _decision_table(self) -> list[tuple[str, ...]]:
        """``decide``'s answer by code: ``top * n + second`` for the top label with the second
        one, ``top * n + top`` for it alone, ``n * n`` for nothing; "other" is never emitted."""
        n = len(self.labels)
        table = [tuple(c for c in dict.fromkeys((self.labels[a], self.labels[b])) if c != "other")
                 for a in range(n) for b in range(n)]
        return [*table, ()]

    def _pair_allowed(self, first: str, second: str) -> bool:
        return first == "other" or not self.second_pairs or frozenset((first, second)) in self.second_pairs

    # ------------------------------------------------------------------ data file
    def to_json(self) -> dict[str, Any]:
        names = self.vectorizer.feature_names()
        top = {}
        for i, label in enumerate(self.labels):  # the strongest evidence for each label, for a reader
            order = np.argsort(-self.coef[i], kind="stable")[:TOP_WEIGHTS]
            top[label] = [[names[j], round(float(self.coef[i, j]), 3)] for j in order]
        return {
            "format": FORMAT_VERSION,
            "labels": list(self.labels),
            "second_threshold": self.second_threshold,
            "min_prob": self.min_prob,
            "second_pairs": [sorted(pair) for pair in self.second_pairs],
            **({"part_prior": self.part_prior.to_json()} if self.part_prior else {}),
            "paragraph_weight": self.paragraph_weight,
            "meta": self.meta,
            # the vocabulary as text, one n-gram a line (whitespace never occurs in an n-gram)
            "families": {name: {"weight": v.weight, "ngrams": "\n".join(gram_text(int(k)) for k in v.keys),
                                "idf": _b64(v.idf)} for name, v in self.vectorizer.vocab.items()},
            "dense": list(self.vectorizer.dense),
            "intercept": [round(float(v), 6) for v in self.intercept],
            # labels x features (families in order, then dense), float32 little-endian, base64:
            # a hundred thousand weights load in milliseconds, where JSON numbers took seconds
            "coef": _b64(self.coef),
            "top_weights": top,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], version: str = "") -> Labeller:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"labeller file format {data.get('format')!r}, this reportsum reads {FORMAT_VERSION}")
        vocab = {}
        for fam, spec in data["families"].items():
            vocab[fam] = Vocabulary(gram_keys(spec["ngrams"]), _unb64(spec["idf"]), float(spec["weight"]))
        vec = Vectorizer(vocab, tuple(data["dense"]))
        n = len(data["labels"])
        coef = _unb64(data["coef"]).reshape(n, vec.n_features)
        return cls(labels=tuple(data["labels"]), vectorizer=vec, coef=coef,
                   intercept=np.array(data["intercept"], dtype=np.float64),
                   second_threshold=float(data.get("second_threshold", 1.0)),
                   min_prob=float(data.get("min_prob", 0.0)), meta=data.get("meta", {}), version=version,
                   second_pairs=tuple(frozenset(p) for p in data.get("second_pairs", ())),
                   part_prior=PartPrior.from_json(data["part_prior"]) if "part_prior" in data else None,
                   paragraph_weight=float(data.get("paragraph_weight", 0.0)))


TOP_WEIGHTS = 25


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def _unb64(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float64)


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
    raw = _shipped_bytes()
    return Labeller.from_json(json.loads(raw), version=_version(raw))


def _shipped_bytes() -> bytes:
    return resources.files("service").joinpath(DEFAULT_PATH).read_bytes()


def version_of(path: str | Path | None = None) -> str:
    """The version ``load(path)`` gives (None: the shipped file's), from the file's bytes alone:
    what a cache key needs, without parsing 4 MB of parameters. A digest's key is taken for
    every article and request, and with ``--labeller``/``REPORTSUM_LABELLER`` it used to load
    the whole file each time (~0.1 s, on the event loop). Kept while the file is unchanged."""
    if path is None:
        return _shipped_version()
    stat = Path(path).stat()
    return _file_version(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _file_version(path: str, mtime_ns: int, size: int) -> str:
    return _version(Path(path).read_bytes())


@functools.cache
def _shipped_version() -> str:
    return _version(_shipped_bytes())


def _version(raw: bytes) -> str:
    # the file's hash names the parameters: it joins meta and the cache/recording keys
    return "lr-" + hashlib.sha256(raw).hexdigest()[:12]
