"""The four quality filters of FineWeb's recipe, with FineWeb's thresholds, in one pass over each document.

`QualityFilters` makes exactly the decisions of datatrove's chain GopherRepetition -> GopherQuality -> C4
(filter_no_terminal_punct=False) -> FineWebQuality, with the same first failing reason, and C4's rewrite of
the text; `quality.fast: false` runs datatrove's four filters themselves instead. Drop reasons are prefixed
with the filter's name (`gopher_rep_dup_line_frac`, `gopher_short_doc`, `c4_curly_bracket`,
`fineweb_line_punct_ratio`) so that two filters' `empty` cannot be confused.

| filter            | thresholds (FineWeb)                                                       |
|-------------------|----------------------------------------------------------------------------|
| Gopher repetition | dup line 0.3, dup para 0.3, dup line chars 0.2, dup para chars 0.2,        |
|                   | top 2/3/4-gram 0.20/0.18/0.16, dup 5..10-gram 0.15..0.10                   |
| Gopher quality    | 50..100k words, mean word 3..10 chars, symbol/word <= 0.1, bullets <= 0.9, |
|                   | ellipsis lines <= 0.3, alpha words >= 0.8, >= 2 stop words                 |
| C4                | no terminal-punctuation rule; drops lorem ipsum, "{", < 5 sentences;       |
|                   | removes javascript/policy lines and lines under 3 words                    |
| FineWeb quality   | line punct >= 0.12, short lines (< 30 chars) <= 0.67, dup chars <= 0.01,   |
|                   | newline/word <= 0.3                                                         |

Where datatrove's time goes, and what the one pass does instead (bench corpus, 357 English documents:
8.2 s for datatrove's chain):
- Words. Each filter asks spaCy for the words again, inside a `memory_zone`, so every word is a new lexeme
  every time (~75 % of the time). spaCy splits text at whitespace first and never looks across it, so the
  words of a text are the words of its whitespace-separated chunks: we tokenize each distinct chunk once
  and remember it (a bounded cache); a chunk of ASCII letters that is no special case is one word.
- C4's sentence count. datatrove runs spaCy's sentencizer on every kept line, but every kept line holds at
  least one sentence, so with 5 kept lines the document passes: we count sentences only when fewer are kept.
Thresholds are read from datatrove's filter objects, so they cannot drift apart.

Signals: every document that reaches this step gets `quality_signals` in its metadata, the values compared
so far (all of them for a kept document), named like the drop reasons (`gopher_rep_dup_line_frac`,
`gopher_word_count`, `fineweb_line_punct_ratio`, ...), and `quality_thresholds`, the condition that would
drop it for each (`{"gopher_rep_dup_line_frac": "> 0.3", ...}`); a dropped one gets `drop_detail`, e.g.
`"dup_line_frac 0.42 > 0.3"`.
"""

from __future__ import annotations

import functools
import inspect
import re

from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.filters.c4_filters import CITATION_REGEX, POLICY_SUBSTRINGS
from datatrove.pipeline.filters.gopher_repetition_filter import (
    find_duplicates,
    find_top_duplicate,
    get_n_grams,
)
from datatrove.utils.text import PUNCTUATION_SET

from stages.filters.quality_chain import C4Quality, FineWebQuality, GopherQuality, GopherRepetition
from stages.filters.quality_memo import Drop, ignore, part_names, read_memo, run_part, write_memo
from stages.recipes.profiles import Profile, fineweb2_filters
from stages.text.ngrams import RepeatedChars, TopDuplicates
from stages.text.words import SpacyWords, sentence_count, shared_words, word_tokenizer
from stages.utils.deadline import BoundedFilter
from stages.utils.memo import text_key
from stages.writers.ledger import DropLedger

_PARAGRAPHS = re.compile(r"\n{2,}")  # as GopherRepetitionFilter
_LINES = re.compile("\n+")
_PUNCTUATION = "".join(PUNCTUATION_SET)  # single characters: str.strip() takes them as a set


# each filter's switch in the config: True (FineWeb's thresholds), False (off), or datatrove parameters to change
Switch = bool | dict
FILTERS = {"gopher_repetition": GopherRepetitionFilter, "gopher_quality": GopherQualityFilter,
           "c4": C4QualityFilter, "fineweb": FineWebQualityFilter}


def on(switch: Switch) -> bool:
    return switch is not False  # `{}` is on, with FineWeb's thresholds


def params(switch: Switch) -> dict:
    return switch if isinstance(switch, dict) else {}


def tunable(name: str) -> dict[str, float]:
    """The numeric thresholds of the filter `name` (a key of FILTERS) and FineWeb's values (datatrove's defaults)."""
    signature = inspect.signature(FILTERS[name].__init__).parameters.values()
    return {p.name: p.default for p in signature
            if type(p.default) in (int, float) and p.name not in ("language", "exclusion_writer")}


class QualityFilters(BoundedFilter, BaseFilter):
    """FineWeb's four quality filters as one step: datatrove's decisions, each document's words computed once.

    A document whose language has a profile (`profiles`: label -> stages.recipes.profiles.Profile) gets FineWeb-2's
    filters instead, configured by `fineweb2_filters`, in FineWeb-2's order (repetition, FineWeb, Gopher
    quality), its words split once by datatrove's word tokenizer for the language; `quality_thresholds` then
    names the profile (`"profile": "fineweb-2:cmn_Hani"`) and `drop_detail` ends with it. The on/off switches
    apply to every language; C4 is English only, as in FineWeb-2.
    """

    name = "✅ Quality (one pass)"
    stage = "quality"

    def __init__(self, gopher_repetition: Switch = True, gopher_quality: Switch = True, c4: Switch = True,
                 fineweb: Switch = True, exclusion_writer=None, profiles: dict[str, Profile | None] | None = None,
                 memo_folder: str | None = None, memo_source: str | None = None):
        super().__init__(exclusion_writer)
        self.memo_folder, self.memo_source = memo_folder, memo_source
        self.memo: dict[bytes, dict] = {}
        # datatrove's objects hold the thresholds (FineWeb's are datatrove's defaults, `params` change them)
        self.rep = GopherRepetitionFilter(**params(gopher_repetition)) if on(gopher_repetition) else None
        self.gq = GopherQualityFilter(**params(gopher_quality)) if on(gopher_quality) else None
        self.c4 = C4QualityFilter(filter_no_terminal_punct=False, **params(c4)) if on(c4) else None
        self.fw = FineWebQualityFilter(**params(fineweb)) if on(fineweb) else None
        self.parts = part_names(dict(zip(FILTERS, map(params, (gopher_repetition, gopher_quality, c4, fineweb)))),
                                self.c4 is not None)  # their names in the memo (stages/filters/quality_memo.py)
        gopher_repetition, gopher_quality, fineweb = on(gopher_repetition), on(gopher_quality), on(fineweb)
        # label -> (profile, repetition, FineWeb, Gopher quality), each None when switched off
        self.profiles = {}
        for label, profile in (profiles or {}).items():
            if profile is not None:
                rep, fw, gq = fineweb2_filters(profile)
                self.profiles[label] = (profile, rep if gopher_repetition else None, fw if fineweb else None,
                                        gq if gopher_quality else None)

    @property
    def words(self) -> SpacyWords:
        return shared_words()

    def run(self, data, rank: int = 0, world_size: int = 1):
        """Replays from `memo_source` each filter's result on a text it judged; keeps all in `memo_folder`."""
        self.memo = read_memo(self.memo_source, rank) if self.memo_source else {}
        yield from super().run(data, rank, world_size)
        if self.memo_folder:
            with self.track_time():
                write_memo(self.memo_folder, rank, self.memo)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        signals: dict[str, float] = {}
        thresholds: dict[str, str] = {}  # what would have dropped it, for `ccpipe audit explain`
        doc.metadata["quality_signals"] = signals
        doc.metadata["quality_thresholds"] = thresholds

        def check(prefix: str, name: str, value: float, bad: bool, op: str, threshold) -> None:
            signals[prefix + name] = value
            if op:
                thresholds[prefix + name] = f"{op} {threshold}"
            if bad:
                raise Drop(prefix + name, f"{name} {value:.4g} {op} {threshold}")

        entry = self.profiles.get(doc.metadata.get("language"))
        try:
            if entry is not None:
                thresholds["profile"] = entry[0].label
                self._fineweb2(doc.text, entry, check)
                return True
            memo = self.memo.setdefault(text_key(doc.text), {}) if self.memo_folder or self.memo_source else {}
            part = functools.partial(run_part, memo, signals, thresholds, check)
            words = None
            if self.rep is not None:
                words = part(self.parts["gopher_repetition"], lambda c: self._repetition(doc.text, c))
            if self.gq is not None:
                part(self.parts["gopher_quality"], lambda c: self._gopher_quality(
                    doc.text, lambda: words if words is not None else self.words(doc.text), c,
                    known={k: v for k, v, _ in memo.get("gopher_quality", [()])[0]}))
            if self.c4 is not None:
                kept = part(self.parts["c4"], lambda c: self._c4(doc.text, c))
                # replayed: the kept lines again, without the sentence count (it passed)
                doc.text = kept if kept is not None else self._c4(doc.text, ignore, sentences=False)
            if self.fw is not None:  # its input is C4's text when C4 ran: another result
                part(self.parts["fineweb"], lambda c: self._fineweb(doc.text, c))
        except Drop as drop:
            doc.metadata["drop_detail"] = drop.detail + (f" ({entry[0].label})" if entry is not None else "")
            return False, drop.reason
        return True

    def _fineweb2(self, text: str, entry, check) -> None:
        """FineWeb-2's chain for one profile; datatrove splits the text into words once (its filters split
        the same text the same way: `split_into_words` remembers its last texts)."""
        profile, rep, fw, gq = entry
        tokenizer = word_tokenizer(profile.word_tokenizer)
        words: list[str] = []

        def split(t: str) -> list[str]:
            if not words:
                words.extend(tokenizer.word_tokenize(t))
            return words

        if rep is not None:
            self._repetition(text, check, rep, split)
        if fw is not None:
            self._fineweb(text, check, fw, split)
        if gq is not None:
            self._gopher_quality(text, lambda: split(text), check, gq)

    def _repetition(self, text: str, check, f=None, split=None) -> list[str] | None:
        f, p = f or self.rep, "gopher_rep_"
        if not text:
            raise Drop(p + "empty", "empty text")
        for unit, pieces in (("para", _PARAGRAPHS.split(text.strip())), ("line", _LINES.split(text))):
            dups, chars = find_duplicates(pieces)
            frac, char_frac = getattr(f, f"dup_{unit}_frac"), getattr(f, f"dup_{unit}_char_frac")
            if frac:
                check(p, f"dup_{unit}_frac", dups / len(pieces), dups / len(pieces) > frac, ">", frac)
            if char_frac:
                check(p, f"dup_{unit}_char_frac", chars / len(text), chars / len(text) > char_frac, ">", char_frac)
        words = (split or self.words)(text)
        # counted as tuples of words (TopDuplicates): the same counts as datatrove's n-grams joined by spaces
        # where no word holds one (jieba's never do: 0.1 s less on the 151 texts of warc/zh)
        tops = TopDuplicates(words) if split is None or " " not in "".join(words) else None
        for n, frac in f.top_n_grams:
            if tops is not None:
                top = tops(n)
            else:  # datatrove's own count: a segmenter's words may hold spaces
                grams = get_n_grams(words, n)
                top = find_top_duplicate(grams) if grams else None
            if top is not None:
                value = top / len(text)
                check(p, f"top_{n}_gram", value, value > frac, ">", frac)
        repeated = RepeatedChars(words)
        for n, frac in f.dup_n_grams:
            value = repeated(n) / len(text)
            check(p, f"duplicated_{n}_n_grams", value, value > frac, ">", frac)
        return words

    def _gopher_quality(self, text: str, words, check, f=None, known: dict | None = None) -> None:
        """`words()`: the text's words. `known`: the signals this text gave with FineWeb's thresholds (none depends
        on a threshold: `quality.gopher_quality: {min_doc_words: 100}` is re-decided from them, words unsplit)."""
        f, p, known = f or self.gq, "gopher_", known or {}

        @functools.cache
        def split():  # (all words, the distinct ones, lengths of those with a character not in the set)
            ws = words()
            distinct = set(ws)  # each test below once per distinct word
            counted = {w for w in distinct if w.strip(_PUNCTUATION)}
            return ws, distinct, [len(w) for w in ws if w in counted]

        def signal(name: str, compute):
            return known[p + name] if p + name in known else compute()

        n = signal("word_count", lambda: len(split()[2]))
        check(p, "word_count", n, False, "", "")
        if f.min_doc_words and n < f.min_doc_words:
            raise Drop(p + "short_doc", f"word_count {n} < {f.min_doc_words}")
        if f.max_doc_words and n > f.max_doc_words:
            raise Drop(p + "long_doc", f"word_count {n} > {f.max_doc_words}")
        mean = signal("mean_word_length", lambda: sum(split()[2]) / n)  # np.mean gives the same float: exact sums
        check(p, "mean_word_length", mean, False, "", "")
        if f.min_avg_word_length and mean < f.min_avg_word_length:
            raise Drop(p + "below_avg_threshold", f"mean_word_length {mean:.4g} < {f.min_avg_word_length}")
        if f.max_avg_word_length and mean > f.max_avg_word_length:
            raise Drop(p + "above_avg_threshold", f"mean_word_length {mean:.4g} > {f.max_avg_word_length}")
        r = f.max_symbol_word_ratio
        if r:
            value = signal("too_many_hashes", lambda: text.count("#") / len(split()[0]))
            check(p, "too_many_hashes", value, value > r, ">", r)
            value = signal("too_many_ellipsis", lambda: (text.count("...") + text.count("…")) / len(split()[0]))
            check(p, "too_many_ellipsis", value, value > r, ">", r)
        lines = text.splitlines()
        if f.max_bullet_lines_ratio:
            value = signal("too_many_bullets", lambda: sum(s.lstrip().startswith("•") or s.lstrip().startswith("-")
                                                           for s in lines) / len(lines))
            check(p, "too_many_bullets", value, value > f.max_bullet_lines_ratio, ">", f.max_bullet_lines_ratio)
        if f.max_ellipsis_lines_ratio:
            value = signal("too_many_end_ellipsis", lambda: sum(s.rstrip().endswith("...") or s.rstrip().endswith("…")
                                                                for s in lines) / len(lines))
            check(p, "too_many_end_ellipsis", value, value > f.max_ellipsis_lines_ratio, ">",
                  f.max_ellipsis_lines_ratio)
        if f.max_non_alpha_words_ratio:  # datatrove's name: it is the minimum share of words with a letter
            value = signal("below_alpha_threshold", lambda: _letter_share(*split()[:2]))
            check(p, "below_alpha_threshold", value, value < f.max_non_alpha_words_ratio, "<",
                  f.max_non_alpha_words_ratio)
        if f.min_stop_words:  # datatrove's English stop words: no threshold of ours changes them
            value = signal("enough_stop_words", lambda: len(f.stop_words.intersection(split()[0])))
            check(p, "enough_stop_words", value, value < f.min_stop_words, "<", f.min_stop_words)

    def _c4(self, text: str, check, sentences: bool = True) -> str:
        f, p = self.c4, "c4_"
        kept, removed = [], 0
        for line in text.splitlines():
            line = line.strip()
            words = line.split()
            if f.max_word_length != -1 and max(map(len, words), default=0) > f.max_word_length:
                removed += 1
                continue
            if f.remove_citations:
                line = CITATION_REGEX.sub("", line)
            if len(words) < f.min_words_per_line:
                removed += 1
                continue
            low = line.lower()
            if f.filter_lorem_ipsum and "lorem ipsum" in low:
                raise Drop(p + "lorem_ipsum", "'lorem ipsum' in a line")
            if f.filter_javascript and "javascript" in low:
                removed += 1
                continue
            if f.filter_curly_bracket and "{" in line:
                raise Drop(p + "curly_bracket", "'{' in a line")
            if f.filter_policy and any(s in low for s in POLICY_SUBSTRINGS):
                removed += 1
                continue
            kept.append(line)
        check(p, "removed_lines", removed, False, "", "")
        if f.min_num_sentences != -1 and sentences:
            # every kept line holds at least one sentence: count them only when that may not be enough
            if len(kept) >= f.min_num_sentences:
                sentences = len(kept)
            else:
                sentences = sum(map(sentence_count, kept))
            check(p, "too_few_sentences", sentences, sentences < f.min_num_sentences, "<", f.min_num_sentences)
        return "\n".join(kept).strip()

    def _fineweb(self, text: str, check, f=None, split=None) -> None:
        f, p = f or self.fw, "fineweb_"
        lines = [line for line in text.split("\n") if line.strip() != ""]
        if not lines:
            raise Drop(p + "empty", "no non-blank line")
        value = sum(1 for line in lines if line.endswith(f.stop_chars)) / len(lines)
        check(p, "line_punct_ratio", value, value < f.line_punct_thr and not (value == 0 and f.line_punct_exclude_zero),
              "<", f.line_punct_thr)
        value = sum(1 for line in lines if len(line) <= f.short_line_length) / len(lines)
        check(p, "short_line_ratio", value, value > f.short_line_threshold, ">", f.short_line_threshold)
        value = find_duplicates(lines)[1] / len(text.replace("\n", ""))
        check(p, "char_dup_ratio", value, value > f.char_duplicates_ratio, ">", f.char_duplicates_ratio)
        value = text.count("\n") / len((split or self.words)(text))
        check(p, "list_ratio", value, value > f.new_line_ratio, ">", f.new_line_ratio)


def _letter_share(words: list[str], distinct: set[str]) -> float:
    has_letter = {w: w.isalpha() or any(c.isalpha() for c in w) for w in distinct}
    return sum(map(has_letter.__getitem__, words)) / len(words)


class OnlyLanguages(BaseFilter):
    """`inner` on the documents whose language is one of `languages`; every other document passes untouched."""

    stage = "quality"

    def __init__(self, inner: BaseFilter, languages, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.inner, self.languages, self.name = inner, frozenset(languages), inner.name

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return doc.metadata.get("language") not in self.languages or self.inner.filter(doc)


def quality_filters(config, ledger_folder: str, profiles: dict[str, Profile | None] | None = None,
                    memo_folder: str | None = None, memo_source: str | None = None) -> list:
    """FineWeb's filters in FineWeb's order: one pass (`config.fast`), or datatrove's four filters, each with
    its own file in the quality stage's ledger; languages with a profile get FineWeb-2's three instead.
    `config` is the `quality` section of the run's config; `memo_folder`, `memo_source`: the one pass's
    results kept there, replayed from there (stages/filters/quality_memo.py)."""
    given = (config.gopher_repetition, config.gopher_quality, config.c4, config.fineweb)
    switches = tuple(on(s) for s in given)
    if getattr(config, "fast", True):
        if not any(switches):
            return []
        return [QualityFilters(*given, exclusion_writer=DropLedger(ledger_folder, "quality"), profiles=profiles,
                               memo_folder=memo_folder, memo_source=memo_source)]

    def ledger(part: str) -> DropLedger:
        return DropLedger(ledger_folder, "quality", part=part)

    filters = []
    if on(config.gopher_repetition):
        filters.append(GopherRepetition(exclusion_writer=ledger("gopher_rep"), **params(config.gopher_repetition)))
    if on(config.gopher_quality):
        filters.append(GopherQuality(exclusion_writer=ledger("gopher"), **params(config.gopher_quality)))
    if on(config.c4):
        filters.append(C4Quality(exclusion_writer=ledger("c4"), filter_no_terminal_punct=False, **params(config.c4)))
    if on(config.fineweb):
        filters.append(FineWebQuality(exclusion_writer=ledger("fineweb"), **params(config.fineweb)))
    profiled = {label: p for label, p in (profiles or {}).items() if p is not None}
    if not profiled:
        return filters
    english = [label for label, p in profiles.items() if p is None]
    gated = [OnlyLanguages(f, english, exclusion_writer=f.exclusion_writer) for f in filters]
    for f in filters:
        f.exclusion_writer = None
    for label, profile in profiled.items():
        chain = fineweb2_filters(profile, kinds=(GopherRepetition, FineWebQuality, GopherQuality))
        for f, enabled, part in zip(chain, (config.gopher_repetition, config.fineweb, config.gopher_quality),
                                    ("gopher_rep", "fineweb", "gopher")):
            if on(enabled):
                gated.append(OnlyLanguages(f, [label], exclusion_writer=ledger(f"{part}_{label}")))
    return gated
