"""Drift's pure rules: a language from a text, a profile of inputs, how far two profiles are apart, and the alerts
each threshold raises."""

from __future__ import annotations

import pytest

from forge.domain.drift import DriftPolicy, Measures, alerts, compare, language, profile
from forge.domain.stats import Interval


@pytest.mark.parametrize("text, code", [
    ("How do I reverse a list in the standard library?", "en"),
    ("¿Cómo puedo invertir una lista con la biblioteca estándar?", "es"),
    ("Comment est-ce que je peux inverser une liste avec la bibliothèque?", "fr"),
    ("Wie kann ich eine Liste mit der Standardbibliothek umkehren, die nicht leer ist?", "de"),
    ("Как развернуть список в стандартной библиотеке?", "ru"),
    ("標準ライブラリでリストを逆順にするには?", "ja"),
    ("如何用标准库反转列表?", "zh"),
    ("x = [3, 2, 1]; y = x[::-1]", "und"),
])
def test_a_language_is_told_by_its_script_or_its_function_words(text, code):
    assert language(text) == code


def test_the_same_inputs_give_the_same_profile_and_no_shift():
    texts = [f"How do I cache the queue for item {i}?" for i in range(40)]
    one, two = profile(texts), profile(list(reversed(texts)))
    assert one == two and one.languages == {"en": 1.0}
    assert compare(one, two) == {"length_shift": 0.0, "language_shift": 0.0, "ngram_novelty": 0.0, "new_ngrams": []}


def test_longer_inputs_in_another_language_on_other_topics_are_far_from_the_training_set():
    training = profile([f"How do I cache the queue for item {i}?" for i in range(40)])
    traffic = profile([f"Necesito ayuda con la factura del cliente y el pedido número {i}, que no llegó a tiempo "
                       f"para el envío de la devolución de la tarjeta" for i in range(40)], keep=50)
    moved = compare(training, traffic)
    assert moved["length_shift"] > 1 and moved["language_shift"] == 1.0 and moved["ngram_novelty"] == 1.0
    assert "factura" in moved["new_ngrams"] or "cliente" in moved["new_ngrams"]


def shifted(**fields) -> Measures:
    return Measures(requests=100, **fields)


def test_each_threshold_crossed_is_one_alert_and_none_below_the_minimum_calls():
    policy = DriftPolicy(min_requests=50, min_judged=10)
    assert alerts(policy, shifted()) == []
    assert alerts(policy, shifted(fallbacks=20, fallback_share=0.2))[0].startswith("fallbacks: 20 of 100")
    worse = Interval(n=10, mean=0.1, lower=0.05, upper=0.2, confidence=0.95)
    assert alerts(policy, shifted(judged=9, win_rate=worse)) == []  # too few pairs to say
    assert alerts(policy, shifted(judged=10, win_rate=worse))[0].startswith("quality:")
    assert len(alerts(policy, shifted(length_shift=0.6, language_shift=0.4, ngram_novelty=0.6))) == 3
    assert alerts(policy, Measures(requests=49, fallbacks=49, fallback_share=1.0)) == []


def test_a_policy_with_an_unknown_key_is_refused_naming_it():
    with pytest.raises(ValueError, match="unknown key 'max_drift'"):
        DriftPolicy.model_validate({"max_drift": 1})
