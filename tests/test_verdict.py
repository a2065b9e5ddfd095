import math

import pytest

from assistant.backends.base import TokenLogprob
from assistant.verdict import VerdictParseError, choose_score, first_json_object, logprob_score, parse_answer


def test_parse_answer_reads_json_inside_code_fence_with_chatter():
    text = 'Sure!\n```json\n{"reasoning": "crack at rim", "anomalous": true, "confidence": 0.9}\n```\nDone.'
    answer = parse_answer(text)
    assert answer.anomalous is True
    assert answer.reasoning == "crack at rim"
    assert answer.confidence == pytest.approx(0.9)


def test_parse_answer_accepts_paper_legacy_correctness_key_where_one_means_normal():
    assert parse_answer('{"reason": "looks fine", "correctness": 1}').anomalous is False
    assert parse_answer('{"reason": "hole", "correctness": 0}').anomalous is True


def test_parse_answer_rejects_reply_without_json():
    with pytest.raises(VerdictParseError, match="no JSON object"):
        parse_answer("The bottle looks normal to me.")


def test_parse_answer_reports_truncated_json():
    with pytest.raises(VerdictParseError, match="truncated"):
        parse_answer('{"reasoning": "the rim is')


def test_parse_answer_rejects_non_boolean_verdict():
    with pytest.raises(VerdictParseError, match="true or false"):
        parse_answer('{"anomalous": "maybe"}')


def test_parse_answer_keeps_explicit_undecided_as_none():
    assert parse_answer('{"anomalous": null, "reasoning": "no evidence"}').anomalous is None


def test_first_json_object_skips_braces_that_are_not_json():
    assert first_json_object('set {a, b} then {"anomalous": false}') == {"anomalous": False}


def test_location_box_is_clamped_to_unit_square():
    answer = parse_answer('{"anomalous": true, "location": {"box": [-0.2, 0.1, 1.4, 0.5], "where": "left"}}')
    assert answer.location == {"box": [0.0, 0.1, 1.0, 0.5], "where": "left"}


def _lp(token, logprob, top=None):
    return TokenLogprob(token, logprob, top or {})


def _tokens(*pieces):
    """Tokens of a reply: plain strings, or (token, probability, {alternative: probability})."""
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(_lp(piece, 0.0))
        else:
            token, p, top = piece
            out.append(_lp(token, math.log(p), {t: math.log(q) for t, q in top.items()}))
    return out


def test_logprob_score_normalises_true_false_probabilities_at_the_anomalous_value():
    tokens = _tokens('{"', "anomalous", '":', (" true", 0.6, {" true": 0.6, " false": 0.2}), "}")
    assert logprob_score(tokens) == pytest.approx(0.75)


def test_logprob_score_ignores_true_tokens_of_other_keys():
    assert logprob_score(_tokens('{"other', '":', ("true", 0.9, {"true": 0.9}), "}")) is None


def test_logprob_score_is_read_at_the_json_value_not_at_a_yes_in_the_reasoning():
    tokens = _tokens('{"reasoning": "', "is it", " anomalous", "?", (" yes", 0.9, {" yes": 0.9, " no": 0.1}),
                     ", at first sight; but it matches the reference", '", "', "anomalous", '":',
                     (" false", 0.8, {" false": 0.8, " true": 0.2}), ', "confidence": 0.3}')
    assert parse_answer("".join(t.token for t in tokens)).anomalous is False
    assert logprob_score(tokens) == pytest.approx(0.2)


def test_logprob_score_reads_the_object_the_verdict_was_read_from():
    tokens = _tokens("Notes: {", '"anomalous', '": ', ("true", 0.99, {"true": 0.99}), "}\n```json\n",
                     '{"anomalous": ', ("false", 0.7, {"false": 0.7, "true": 0.3}), "}\n```")
    assert parse_answer("".join(t.token for t in tokens)).anomalous is False  # the fenced object wins
    assert logprob_score(tokens) == pytest.approx(0.3)


def test_choose_score_prefers_logprobs_then_confidence_then_expert():
    answer = parse_answer('{"anomalous": true, "confidence": 0.8}')
    tokens = _tokens('{"anomalous":', ("true", 0.5, {"true": 0.5, "false": 0.5}), ', "confidence": 0.8}')
    assert choose_score(answer, tokens, 0.1) == (pytest.approx(0.5), "logprobs")
    assert choose_score(answer, None, 0.1) == (pytest.approx(0.8), "confidence")
    no_conf = parse_answer('{"anomalous": true}')
    assert choose_score(no_conf, None, 0.3) == (pytest.approx(0.3), "expert")
    assert choose_score(no_conf, None, None) == (1.0, "verdict")


def test_confidence_in_own_normal_verdict_is_turned_into_anomaly_probability():
    answer = parse_answer('{"anomalous": false, "confidence": 0.9}')
    assert choose_score(answer, None, None) == (pytest.approx(0.1), "confidence")
