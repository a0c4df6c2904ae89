"""Labelled prompt sets: prompts, each with the paraphrases that should hit its cached answer.

The file format is deliberately small so cache warming reuses it (a playbook is a labelled set
with a `warm:` section, see playbook.py; the audit ignores that section):

    prompts:
      - prompt: What are your business hours?
        answer: Nine to five, Monday to Friday.   # optional: what the cache should answer
        system: You are a support bot.            # optional: the app's system message
        paraphrases:
          - When are you open?
          - What are your opening hours?
        tags: {topic: hours}                      # optional: tags `cacheops warm` writes with it
      - prompt: Can I get a refund?
        paraphrases: [How do I get my money back?]
    warm: {...}                                   # optional: see playbook.py

Each paraphrase should be served its own prompt's answer; every other prompt should not be (a
lookup that lands on another prompt is a wrong answer, unless both prompts give the same answer).

`evaluate` plays a cache holding exactly the labelled prompts, with the library's one-nearest
lookup (check(num_results=1) within the threshold), and reports precision and recall per threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..ownkeys import valid_tag_name
from ..yamlfile import load_yaml_model


class LabelledPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)
    paraphrases: list[str] = []
    answer: str | None = None
    system: str | None = None
    tags: dict[str, str] = {}  # cache warming: tags for this prompt's entries

    @field_validator("paraphrases")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        if any(not p.strip() for p in value):
            raise ValueError("a paraphrase is empty")
        return value

    @field_validator("tags")
    @classmethod
    def _tag_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not valid_tag_name(name)]
        if bad:
            raise ValueError(f"tag name {bad[0]!r}: use letters, digits, '_', '-' or '.'")
        return value


class LabelledSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: list[LabelledPrompt] = Field(min_length=1)
    warm: dict[str, Any] | None = None  # a warm playbook's section (validated by playbook.py), ignored here

    @property
    def paraphrase_count(self) -> int:
        return sum(len(p.paraphrases) for p in self.prompts)


def load_labelled_set(path: str | Path) -> LabelledSet:
    return load_yaml_model(path, LabelledSet)


@dataclass
class ThresholdPoint:
    threshold: float
    precision: float
    recall: float
    right: int  # paraphrases served their own prompt's answer
    wrong: int  # lookups served another prompt's answer
    missed: int  # paraphrases that found nothing within the threshold

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "right": self.right,
            "wrong": self.wrong,
            "missed": self.missed,
        }


@dataclass
class Lookup:
    """One simulated lookup: the query, the nearest labelled prompt, its distance, right or wrong."""

    query: str
    nearest: str
    distance: float
    right: bool
    paraphrase: bool  # False: another labelled prompt asked as a new question

    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "nearest": self.nearest,
            "distance": round(self.distance, 6),
            "right": self.right,
            "paraphrase": self.paraphrase,
        }


@dataclass
class LabelledReport:
    prompts: int
    paraphrases: int
    min_precision: float
    points: list[ThresholdPoint]
    recommended: float | None  # largest threshold whose precision meets min_precision
    at_recommended: ThresholdPoint | None
    lookups: list[Lookup] = field(default_factory=list)

    def to_dict(self) -> dict:
        wrong = sorted((lk for lk in self.lookups if not lk.right), key=lambda lk: lk.distance)[:10]
        return {
            "prompts": self.prompts,
            "paraphrases": self.paraphrases,
            "min_precision": self.min_precision,
            "recommended_threshold": self.recommended,
            "at_recommended": self.at_recommended.to_dict() if self.at_recommended else None,
            "points": [p.to_dict() for p in self.points],
            "closest_wrong_lookups": [lk.to_dict() for lk in wrong],
        }


DEFAULT_GRID = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def evaluate(
    labelled: LabelledSet,
    embed,
    min_precision: float = 0.99,
    grid: tuple[float, ...] = DEFAULT_GRID,
    extra: tuple[float, ...] = (),
) -> LabelledReport:
    """Precision/recall of a cache holding the labelled prompts. embed(list[(text, system)]) -> unit-norm
    rows (numpy), computing what the library embeds for each (text, system)."""
    import numpy as np

    prompts = labelled.prompts
    store = embed([(p.prompt, p.system) for p in prompts])
    queries = [(para, i) for i, p in enumerate(prompts) for para in p.paraphrases]
    asked = embed([(q, prompts[i].system) for q, i in queries]) if queries else store[:0]
    lookups: list[Lookup] = []

    def same_answer(i: int, j: int) -> bool:
        return i == j or (prompts[i].answer is not None and prompts[i].answer == prompts[j].answer)

    if queries:
        dist = 1.0 - asked @ store.T
        for row, (text, owner) in enumerate(queries):
            j = int(np.argmin(dist[row]))
            lookups.append(Lookup(text, prompts[j].prompt, float(dist[row, j]), same_answer(owner, j), True))
    if len(prompts) > 1:
        # Every labelled prompt asked as a new question of a cache holding the others.
        dist = 1.0 - store @ store.T
        np.fill_diagonal(dist, np.inf)
        for i, p in enumerate(prompts):
            j = int(np.argmin(dist[i]))
            lookups.append(Lookup(p.prompt, prompts[j].prompt, float(dist[i, j]), same_answer(i, j), False))

    total = len(queries)

    def point(t: float) -> ThresholdPoint:
        hits = [lk for lk in lookups if lk.distance <= t]
        right = sum(1 for lk in hits if lk.right and lk.paraphrase)
        wrong = sum(1 for lk in hits if not lk.right)
        precision = right / (right + wrong) if right + wrong else 1.0
        return ThresholdPoint(t, precision, right / total if total else 1.0, right, wrong, total - right)

    recommended = recommend(lookups, min_precision, point)
    thresholds = sorted(set(grid) | set(extra) | ({recommended} if recommended is not None else set()))
    return LabelledReport(
        len(prompts),
        total,
        min_precision,
        [point(t) for t in thresholds],
        recommended,
        point(recommended) if recommended is not None else None,
        lookups,
    )


def recommend(lookups: list[Lookup], min_precision: float, point) -> float | None:
    """The largest threshold whose precision meets the target. Precision only changes at a lookup's
    distance, so the candidates are just below each distance, and the largest distance itself."""
    distances = sorted({lk.distance for lk in lookups})
    if not distances:
        return None
    best = None
    for i, d in enumerate(distances):
        if point(d).precision >= min_precision:
            upper = distances[i + 1] if i + 1 < len(distances) else None
            best = just_below(upper) if upper is not None else round_up(d)
            if best < d:  # the gap to the next distance is below the rounding step
                best = d
    if best is None and point(just_below(distances[0])).precision >= min_precision:
        best = just_below(distances[0])
    return best


STEP = 1e-4  # thresholds are recommended with 4 decimals


def just_below(d: float) -> float:
    """A 4-decimal threshold strictly below d (never negative)."""
    t = math.floor(d / STEP) * STEP
    if t >= d - 1e-7:
        t -= STEP
    return max(0.0, round(t, 4))


def round_up(d: float) -> float:
    return round(math.ceil(d / STEP) * STEP, 4)
