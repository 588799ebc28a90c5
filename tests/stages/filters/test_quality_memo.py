"""The quality filters' memo: a filter's result replayed on a text it judged gives what measuring gives."""

import itertools
import random
from fractions import Fraction

from stages.filters.quality import QualityFilters
from stages.filters.quality_memo import MAX_DENOMINATOR, _limit_denominator, read_memo, write_memo
from stages.text.words import shared_words
from stages.utils.memo import memo_path, text_key
from tests.fixtures import make_doc
from tests.stages.filters.test_quality import GOOD

TEXTS = [
    GOOD,
    "spam spam spam\n" * 50,  # repetition
    "too short",  # repetition, then Gopher quality's word count
    GOOD + "\nvar x = {a: 1};",  # C4's curly bracket
    GOOD + "\nPlease enable JavaScript to view the comments.\nok\nRead our privacy policy here today.",  # C4 rewrites
    "\n".join(GOOD.split("\n")[:3]),  # too few lines for C4's sentence count
    "\n".join(line.rstrip(".") for line in GOOD.split("\n")),  # FineWeb's line punctuation
    "",
]
SWITCHES = list(itertools.product((True, False), repeat=4))  # repetition, Gopher quality, C4, FineWeb


def _run(switches, **memo) -> list:
    """(kept, text, metadata) of each text through the one pass with `switches`."""
    docs = [make_doc(text, doc_id=f"doc-{i}") for i, text in enumerate(TEXTS)]
    kept = {doc.id for doc in QualityFilters(*switches, **memo).run(iter(docs), rank=0)}
    return [(doc.id in kept, doc.text, doc.metadata) for doc in docs]


def test_replayed_decisions_equal_measured_ones_for_every_change_of_switches(tmp_path):
    for source in [(True,) * 4, (True, True, False, True), (False, True, True, False)]:
        folder = tmp_path / "".join("1" if s else "0" for s in source)
        _run(source, memo_folder=str(folder))
        for switches in SWITCHES:
            assert _run(switches, memo_source=str(folder)) == _run(switches), (source, switches)


def test_a_replayed_result_is_not_measured_again(tmp_path):
    _run((True,) * 4, memo_folder=str(tmp_path / "a"))
    memo = read_memo(str(tmp_path / "a"), 0)
    signals = memo[text_key(GOOD)]["gopher_quality"][0]
    assert signals[0][:1] == ["gopher_word_count"]
    signals[0][1] = 12345  # what the replay shows comes from the memo
    write_memo(str(tmp_path / "b"), 0, memo)
    assert _run((True,) * 4, memo_source=str(tmp_path / "b"))[0][2]["quality_signals"]["gopher_word_count"] == 12345


def test_a_run_keeps_its_source_results_and_its_own(tmp_path):
    _run((True, True, True, False), memo_folder=str(tmp_path / "a"))
    _run((True, True, False, True), memo_folder=str(tmp_path / "b"), memo_source=str(tmp_path / "a"))
    parts = read_memo(str(tmp_path / "b"), 0)[text_key(GOOD)]
    assert set(parts) == {"gopher_repetition", "gopher_quality", "c4", "fineweb"}  # FineWeb on C4-less text
    assert read_memo(str(tmp_path / "b"), 0)[text_key(GOOD)]["c4"] == read_memo(str(tmp_path / "a"), 0)[text_key(GOOD)]["c4"]


def test_floats_come_back_exactly(tmp_path):
    values = [0.1, 1 / 3, 0.1 + 0.2, 49 / 51, 5.378048780487805, 1e-300, 0.0, 1.0, 7]
    memo = {text_key("x"): {"c4": [[[f"s{i}", v, ""] for i, v in enumerate(values)], None]}}
    write_memo(str(tmp_path), 0, memo)
    back = [s[1] for s in read_memo(str(tmp_path), 0)[text_key("x")]["c4"][0]]
    assert back == values and [type(v) for v in back] == [type(v) for v in values]


def test_an_unreadable_memo_is_measured_again(tmp_path):
    (tmp_path / "00000.parquet").write_bytes(b"not parquet")
    assert memo_path(str(tmp_path), 0).endswith("00000.parquet") and read_memo(str(tmp_path), 0) == {}
    assert _run((True,) * 4, memo_source=str(tmp_path)) == _run((True,) * 4)


def test_other_thresholds_are_measured_not_replayed(tmp_path):
    _run((True,) * 4, memo_folder=str(tmp_path))
    for switches in [(True, {"min_doc_words": 200}, True, True), (True, True, {"min_num_sentences": 9}, True),
                     (True, True, True, {"line_punct_thr": 0.5}), (True, True, False, {"line_punct_thr": 0.5})]:
        assert _run(switches, memo_source=str(tmp_path)) == _run(switches), switches
    assert _run((True, {"min_doc_words": 200}, True, True))[0][0] is False  # GOOD has 164 words: it changed


# texts of words no other test splits, so that the shared word cache shows whether they were split here
FRESH = [" ".join(f"zq{i}x{j} word" for j in range(n)) + "\nThe end of it is near, and that is fine."
         for i, n in enumerate((15, 30, 60))]  # 40, 70 and 130 words


def _fresh_run(switches, **memo) -> list:
    docs = [make_doc(text, doc_id=f"fresh-{i}") for i, text in enumerate(FRESH)]
    kept = {doc.id for doc in QualityFilters(*switches, **memo).run(iter(docs), rank=0)}
    return [(doc.id in kept, doc.text, doc.metadata) for doc in docs]


def test_gopher_quality_with_other_thresholds_is_re_decided_from_fineweb_signals_without_words(tmp_path):
    """Gopher quality's signals depend on the text only: with other thresholds it is re-decided from those it
    recorded with FineWeb's, words unsplit, and decides as measuring does (the word counts straddle 50 and 100)."""
    only_gopher = (False, True, False, False)
    _fresh_run(only_gopher, memo_folder=str(tmp_path))
    shared_words().cache.clear()
    for change in ({"min_doc_words": 100}, {"min_doc_words": 45, "max_doc_words": 100}, {"min_stop_words": 4},
                   {"max_non_alpha_words_ratio": 0.975}):
        switches = (False, change, False, False)
        replayed = _fresh_run(switches, memo_source=str(tmp_path))
        assert not [c for c in shared_words().cache if c.startswith("zq")], change  # no word split
        assert replayed == _fresh_run(switches), change
        shared_words().cache.clear()
    assert [kept for kept, _, _ in _fresh_run((False, {"min_doc_words": 100}, False, False))] == [False, False, True]
    # with FineWeb's thresholds, a text dropped for its word count has no later signal: measured (words split)
    _fresh_run((False, {"min_doc_words": 10}, False, False), memo_source=str(tmp_path))
    assert [c for c in shared_words().cache if c.startswith("zq")]


def test_ratios_are_fractions_limit_denominator():
    # _limit_denominator is fractions.py's algorithm on ints: the memo's bytes are what Fraction gave
    rng = random.Random(7)
    values = [i / j for i in range(0, 60) for j in range(1, 60)]
    values += [rng.randrange(1 << 30) / rng.randrange(1, 1 << 26) for _ in range(3000)]
    values += [rng.uniform(-5, 5) for _ in range(2000)] + [rng.random() * 1e-9 for _ in range(200)]
    values += [1 / 3, -2 / 7, 0.1 + 0.2, 5.378048780487805, 1e-300, 123456789.123, (1 << 24) + 0.5]
    for v in values:
        ratio = Fraction(v).limit_denominator(MAX_DENOMINATOR)
        assert _limit_denominator(v) == (ratio.numerator, ratio.denominator), v
