"""The judge's verdicts: read from its reply, and both orders combined so position bias cancels out."""

from forge.domain.judging import combine, judge_messages, parse_verdict, tally


def test_the_last_verdict_in_the_reply_counts():
    assert parse_verdict("A looks right at first [[A]], but on reflection [[B]]") == "B"
    assert parse_verdict("They are equally good. [[C]]") == "TIE"
    assert parse_verdict("I cannot decide.") is None


def test_a_candidate_preferred_in_both_orders_wins_and_one_preferred_by_position_only_ties():
    assert combine("A", "B") == "win"  # candidate was A, then B: preferred both times
    assert combine("B", "A") == "loss"
    assert combine("A", "A") == "tie"  # the judge always picks the first answer: no information
    assert combine("A", "TIE") == "win" and combine("TIE", "TIE") == "tie"
    assert combine("A", None) is None


def test_the_win_rate_counts_ties_as_half_and_leaves_out_undecided_pairs():
    summary = tally("teacher", ["win", "win", "tie", "loss", None])
    assert (summary.wins, summary.losses, summary.ties, summary.invalid) == (2, 1, 1, 1)
    assert summary.win_rate == 0.625
    assert tally("teacher", [None]).win_rate is None


def test_the_judge_sees_the_conversation_and_both_answers_labelled():
    messages = judge_messages([{"role": "user", "content": [{"type": "text", "text": "Hi?"}]}], "first", "second")
    assert messages[0]["role"] == "system" and "[[C]]" in messages[0]["content"]
    user = messages[1]["content"]
    assert "USER: Hi?" in user and user.index("[Answer A]\nfirst") < user.index("[Answer B]\nsecond")
