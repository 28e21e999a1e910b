"""Drift: how a domain's live traffic moves away from what its production student learned, and whether the student
still holds up on it. Pure: texts and counts in, measures and alerts out.

Inputs are profiled without any model: length in tokens (words and punctuation marks, counted the same way on both
sides), language (script, then the commonest function words of seven Latin-script languages), and the frequent word
n-grams (one and two words, those made only of function words left out). The training set's profile is compared
with a window of traffic; the student's fallback share and its judged win rate against the teacher come from the
router's traces and sampled, judged pairs.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable

from pydantic import BaseModel, Field

from forge.domain.sections import Section
from forge.domain.stats import Interval

TOKEN = re.compile(r"\w+|[^\w\s]")
WORD = re.compile(r"[^\W\d_]{2,}")
TRAINING_NGRAMS = 600  # the training set's n-grams kept in its profile
TRAFFIC_NGRAMS = 50  # the traffic's commonest n-grams compared with them
SHOWN_NGRAMS = 10
MAX_NGRAM_CHARS = 40

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and is are of to in that it for with this what how you be on not can was do".split()),
    "es": frozenset("el la los las de que y en un una es por para con no se del como cómo qué más puedo hay".split()),
    "fr": frozenset("le la les de des et est un une que qui pour dans pas ce sur avec du au comment".split()),
    "de": frozenset("der die das und ist nicht ein eine zu den mit von ich sie wie für auf dem des".split()),
    "it": frozenset("il lo la gli le di che è un una per non con del della sono come questo posso".split()),
    "pt": frozenset("o os as de que e um uma para com não do da em por como mais está".split()),
    "nl": frozenset("de het een en van is dat niet op te met voor zijn hoe wat ik".split()),
}
ALL_STOPWORDS = frozenset().union(*STOPWORDS.values())
# Scripts that name their language (or family) on their own, by code point range.
SCRIPTS = [("ru", 0x0400, 0x04FF), ("el", 0x0370, 0x03FF), ("he", 0x0590, 0x05FF), ("ar", 0x0600, 0x06FF),
           ("hi", 0x0900, 0x097F), ("th", 0x0E00, 0x0E7F), ("ko", 0xAC00, 0xD7AF), ("ja", 0x3040, 0x30FF),
           ("zh", 0x4E00, 0x9FFF)]
UNKNOWN = "und"  # undetermined: too little text, or code and numbers only


class DriftPolicy(Section):
    """A domain's `[drift]` table: what is watched on its production student, and when to raise an alert."""

    enabled: bool = Field(True, description="false: no drift checks for this domain.")
    check_minutes: float = Field(60.0, ge=0.0001, le=10_080, description="How often the traffic is checked.")
    window_hours: float = Field(24.0, gt=0, le=720, description="The traffic each check looks at: the last hours.")
    min_requests: int = Field(50, ge=1, le=1_000_000, description="Router calls a check needs before it judges "
                                                                  "anything (fewer: no alert).")
    max_traces: int = Field(5000, ge=10, le=100_000, description="Calls read per check at most (the newest).")
    max_fallback_share: float = Field(0.1, ge=0, le=1, description="Alert when the student hands more than this "
                                                                   "share of its calls to the teacher.")
    judge_share: float = Field(0.05, ge=0, le=1, description="Share of the student's answers replayed on the "
                                                             "teacher and judged (0: quality is not watched).")
    max_judged_per_check: int = Field(20, ge=0, le=10_000, description="Pairs judged per check at most: the "
                                                                       "token and cost budget of watching quality.")
    min_judged: int = Field(20, ge=1, le=100_000, description="Judged pairs in the window before quality counts.")
    min_win_rate: float = Field(0.3, ge=0, le=1, description="Alert when the student's win rate against the "
                                                             "teacher (ties ½) is surely below this …")
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="… at this confidence.")
    max_length_shift: float = Field(0.5, ge=0, le=100, description="Alert when the median input length moves by "
                                                                   "more than this share of the training set's.")
    max_language_shift: float = Field(0.3, ge=0, le=1, description="Alert when the languages' mix moves more than "
                                                                   "this (total variation distance, 0–1).")
    max_ngram_novelty: float = Field(0.5, ge=0, le=1, description="Alert when more than this share of the "
                                                                  "traffic's commonest phrases never occur in training.")
    start_run: bool = Field(False, description="true: an alert queues a distillation run of the domain (the "
                                               "next reconcile pass starts it).")
    run_cooldown_hours: float = Field(24.0, ge=0, le=720, description="No second run from drift within this.")


class InputProfile(BaseModel):
    """What a set of inputs looks like: enough to compare, nothing of the texts themselves beyond frequent phrases."""

    count: int = 0
    median_tokens: float | None = None
    p90_tokens: float | None = None
    languages: dict[str, float] = Field(default_factory=dict)  # share per language code
    ngrams: dict[str, int] = Field(default_factory=dict)  # the commonest n-grams and their counts


class Measures(BaseModel):
    requests: int = 0  # the student's calls in the window (answered or handed to the teacher)
    fallbacks: int = 0
    fallback_share: float | None = None
    judged: int = 0
    win_rate: Interval | None = None
    length_shift: float | None = None
    language_shift: float | None = None
    ngram_novelty: float | None = None
    new_ngrams: list[str] = Field(default_factory=list)
    traffic: InputProfile = Field(default_factory=InputProfile)


def tokens(text: str) -> int:
    return len(TOKEN.findall(text))


def language(text: str) -> str:
    """A language code for `text`: its script when that names one, else the Latin language whose function words it
    uses most; `und` when nothing says."""
    counts: Counter[str] = Counter()
    letters = 0
    for ch in text[:4000]:
        code = ord(ch)
        if code < 0x0370:
            letters += ch.isalpha()
            continue
        for lang, low, high in SCRIPTS:
            if low <= code <= high:
                counts[lang] += 1
                break
    if counts and sum(counts.values()) >= letters:
        top = counts.most_common(1)[0][0]
        return "ja" if top == "zh" and counts["ja"] else top  # kanji with kana is Japanese
    words = [w.lower() for w in WORD.findall(text[:4000])]
    hits = Counter({lang: sum(w in stop for w in words) for lang, stop in STOPWORDS.items()})
    best = hits.most_common(2)
    if not best or best[0][1] == 0 or (len(best) > 1 and best[0][1] == best[1][1]):
        return UNKNOWN
    return best[0][0]


def ngrams(text: str) -> Iterable[str]:
    """Lower-case words and word pairs; those made only of function words say nothing of the topic."""
    words = [w.lower() for w in WORD.findall(text)]
    for i, word in enumerate(words):
        if word not in ALL_STOPWORDS:
            yield word[:MAX_NGRAM_CHARS]
        if i + 1 < len(words) and not (word in ALL_STOPWORDS and words[i + 1] in ALL_STOPWORDS):
            yield f"{word} {words[i + 1]}"[:MAX_NGRAM_CHARS]


def profile(texts: Iterable[str], keep: int = TRAINING_NGRAMS) -> InputProfile:
    lengths: list[int] = []
    langs: Counter[str] = Counter()
    grams: Counter[str] = Counter()
    for text in texts:
        lengths.append(tokens(text))
        langs[language(text)] += 1
        grams.update(dict.fromkeys(ngrams(text), 1))  # in how many inputs a phrase occurs, not how often one repeats it
    if not lengths:
        return InputProfile()
    lengths.sort()
    return InputProfile(count=len(lengths), median_tokens=float(lengths[len(lengths) // 2]),
                        p90_tokens=float(lengths[min(len(lengths) - 1, int(0.9 * len(lengths)))]),
                        languages={k: round(v / len(lengths), 4) for k, v in langs.most_common()},
                        ngrams=dict(_commonest(grams, keep)))


def compare(training: InputProfile, traffic: InputProfile) -> dict[str, Any]:
    """How far `traffic` moved from `training`: length shift, language shift, n-gram novelty and the new phrases."""
    if not training.count or not traffic.count:
        return {"length_shift": None, "language_shift": None, "ngram_novelty": None, "new_ngrams": []}
    base = max(training.median_tokens or 0.0, 1.0)
    length = abs((traffic.median_tokens or 0.0) - (training.median_tokens or 0.0)) / base
    codes = set(training.languages) | set(traffic.languages)
    lang = 0.5 * sum(abs(training.languages.get(c, 0.0) - traffic.languages.get(c, 0.0)) for c in codes)
    top = _commonest(Counter(traffic.ngrams), TRAFFIC_NGRAMS)
    weight = sum(n for _, n in top)
    new = [(g, n) for g, n in top if g not in training.ngrams]
    novelty = sum(n for _, n in new) / weight if weight else None
    return {"length_shift": round(length, 4), "language_shift": round(lang, 4),
            "ngram_novelty": None if novelty is None else round(novelty, 4),
            "new_ngrams": [g for g, _ in new[:SHOWN_NGRAMS]]}


def _commonest(counts: Counter[str], keep: int) -> list[tuple[str, int]]:
    """The `keep` commonest, ties in alphabetical order: the same inputs always give the same profile."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:keep]


def alerts(policy: DriftPolicy, measures: Measures) -> list[str]:
    """Each threshold the window crossed, in words with its numbers; none below `min_requests`."""
    if measures.requests < policy.min_requests:
        return []
    found = []
    share = measures.fallback_share
    if share is not None and share > policy.max_fallback_share:
        found.append(f"fallbacks: {measures.fallbacks} of {measures.requests} calls ({share:.1%}) went to the "
                     f"teacher, over {policy.max_fallback_share:.1%}")
    rate = measures.win_rate
    if rate is not None and measures.judged >= policy.min_judged and rate.upper < policy.min_win_rate:
        found.append(f"quality: the judged win rate against the teacher is below {rate.upper:.3f} (at "
                     f"{policy.confidence:.0%}, {measures.judged} pairs), under {policy.min_win_rate:g}")
    if measures.length_shift is not None and measures.length_shift > policy.max_length_shift:
        found.append(f"length: the median input is {measures.traffic.median_tokens or 0:g} tokens, "
                     f"{measures.length_shift:.0%} away from the training set's")
    if measures.language_shift is not None and measures.language_shift > policy.max_language_shift:
        mix = ", ".join(f"{k} {v:.0%}" for k, v in list(measures.traffic.languages.items())[:4])
        found.append(f"language: the mix moved {measures.language_shift:.2f} (now {mix})")
    if measures.ngram_novelty is not None and measures.ngram_novelty > policy.max_ngram_novelty:
        found.append(f"topics: {measures.ngram_novelty:.0%} of the commonest phrases never occur in training "
                     f"({', '.join(measures.new_ngrams[:5])})")
    return found
