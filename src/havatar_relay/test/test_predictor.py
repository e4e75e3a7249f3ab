"""The word predictor: completions and next words from wordfreq's lists and the user's history."""
from __future__ import annotations

import sys

import pytest

from havatar_relay.predictor import History, normalise, predict, word_list, words_of


@pytest.mark.parametrize('lang,word', [('en', 'the'), ('ro', 'și'), ('de', 'und')])
def test_each_language_has_a_list_from_wordfreq(lang, word):
    words = word_list(lang)
    assert len(words.ranked) > 10000
    assert word in words.ranked[:20]


def test_unknown_language_is_refused():
    with pytest.raises(ValueError):
        predict('xx', 'hello')


def test_completions_are_frequent_words_with_the_prefix():
    result = predict('en', 'I would like some wat')
    assert result['prefix'] == 'wat'
    assert 'water' in result['completions']
    assert all(w.startswith('wat') and w != 'wat' for w in result['completions'])
    assert result['next'] == []


def test_completion_keeps_a_capital_letter():
    assert predict('en', 'Tha')['completions'][0].startswith('Tha')


def test_next_words_follow_a_finished_word():
    result = predict('en', 'thank ')
    assert result['prefix'] == '' and result['completions'] == []
    assert len(result['next']) == 6


def test_history_ranks_above_the_list():
    plain = predict('en', 'wat')['completions']
    history = History()
    history.learn('I love watermelon')
    history.learn('watermelon again please')
    assert plain[0] != 'watermelon'
    assert predict('en', 'wat', history)['completions'][0] == 'watermelon'
    # a word pair said before comes first after its first word
    history.learn('please come here')
    assert predict('en', 'please ', history)['next'][0] == 'come'


def test_history_round_trips_and_stays_bounded():
    history = History()
    for i in range(3000):
        history.learn(f'word{"x" * (i % 50)}a{i} other')
    assert len(history.words) <= 2000 and len(history.pairs) <= 4000
    again = History.from_json(history.to_json())
    assert again == history
    assert History.from_json('garbage') == History()
    assert History.from_json({'words': {'a': 'x', 'b': 2}}).words == {'b': 2}


def test_romanian_diacritics_are_suggested_with_comma_below():
    result = predict('ro', 'mulțum')
    assert any(w.startswith('mulțumesc') for w in result['completions'])
    # cedilla typed: the same suggestions, in comma-below
    assert predict('ro', 'mulţum')['completions'] == result['completions']
    assert any(w.startswith('ș') for w in predict('ro', 'ş')['completions'])
    assert not any(c in w for w in predict('ro', 'ş')['completions'] for c in 'şţ')
    assert all(w.startswith('înc') for w in predict('ro', 'înc')['completions'])
    assert predict('ro', 'înc')['completions']


def test_romanian_history_is_normalised():
    history = History()
    history.learn('Aş vrea o ţuică')
    assert 'aș' in history.words and 'țuică' in history.words
    assert predict('ro', 'ţui', history)['completions'][0] == 'țuică'
    assert normalise('ŞŢşţ') == 'ȘȚșț'
    assert words_of("Ăsta-i Îngerul, n'are") == ['ăsta-i', 'îngerul', "n'are"]


def test_german_umlauts_and_sharp_s():
    assert any(w.startswith('grü') for w in predict('de', 'grü')['completions'])
    assert 'straße' in predict('de', 'straß')['completions']


def test_a_sentence_start_suggests_capitalised_words():
    result = predict('en', 'Hello. ')
    assert result['next'] and all(w[0].isupper() for w in result['next'])
    assert predict('en', '')['next'][0][0].isupper()


def test_without_wordfreq_prediction_says_what_is_missing(monkeypatch):
    from havatar_relay import predictor

    monkeypatch.setattr(predictor, '_lists', {})
    monkeypatch.setitem(sys.modules, 'wordfreq', None)  # its import fails
    with pytest.raises(RuntimeError, match='wordfreq'):
        predict('en', 'hel')
