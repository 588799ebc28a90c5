"""Language profiles: for each kept language, its language-ID threshold, word segmentation and quality filters.

English keeps FineWeb's recipe (stages/filters/quality.py, no profile: `None` below). Every other language takes
FineWeb-2's published profile, `configs/{iso3}_{script}.yml` of huggingface/fineweb-2 (Apache-2.0), shipped
beside this file (see README.md here for provenance and how to add one), wired as FineWeb-2's
`fineweb-2-pipeline.py` wires it (`fineweb2_filters`): Gopher repetition, FineWeb quality, Gopher quality, in
that order, no C4, each splitting words with datatrove's word tokenizer for the language (jieba for Chinese,
SudachiPy for Japanese, spaCy's rules for German, ...).

A language label is what the language-ID model emits: lid.176 says `zh`, `de`, ...; GlotLID (FineWeb-2's)
says `cmn_Hani`, `deu_Latn`, .... `profile_name` maps either to a profile file: lid.176's codes through
datatrove's own table (`tokenizer_assignment.csv`: `zh` -> `cmn_Hani`, `de` -> `deu_Latn`), and the other
Chinese labels (`zho_Hani`, `cmn_Hant`, `zh_Hant`, ...) to `cmn_Hani`: lid.176 has one `zh` for Simplified and
Traditional, and FineWeb-2 has one Mandarin profile for both.

`quality.profiles` in the config overrides a profile per label: `{zh: {language_score: 0.5}}` changes one
value; `base: FILE_OR_NAME` starts from another profile (a shipped name, or a path to a `.yml` of FineWeb-2's
form); `word_tokenizer` names another datatrove tokenizer. `check_overrides` validates them before any work.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import yaml
from datatrove.utils._import_utils import ASSETS_PATH
from datatrove.utils.word_tokenizers import load_tokenizer_assignments

PROFILES_DIR = Path(__file__).resolve().parent
# huggingface/fineweb-2 at the commit the shipped files were copied from (README.md here)
SOURCE = "huggingface/fineweb-2@d0defb24f193bb9a5a11b8b14524a03c4858e1b6"
ENGLISH = ("en", "eng_Latn", "eng")  # FineWeb's own recipe: no profile
_LANG_SCRIPT = re.compile(r"^[a-z]{2,3}_[A-Z][a-z]{3}$")
# one Chinese profile for both scripts unless `quality.profiles` sets one apart
CHINESE = {"zh", "zh_Hans", "zh_Hant", "zh_Hani", "zho", "zho_Hans", "zho_Hant", "zho_Hani", "cmn", "cmn_Hans",
           "cmn_Hant", "cmn_Hani"}
# the keys of a FineWeb-2 profile file, and their types
NUMBERS = ("dup_line_frac", "language_score", "line_punct_thr", "max_avg_word_length", "max_non_alpha_words_ratio",
           "min_avg_word_length", "new_line_ratio")
NGRAMS = ("top_n_grams", "dup_n_grams")
OVERRIDE_KEYS = (*NUMBERS, *NGRAMS, "stopwords", "base", "word_tokenizer")


class ProfileError(ValueError):
    """A profile or an override that cannot be used: one line naming the key or the file."""


@dataclass(frozen=True)
class Profile:
    """FineWeb-2's per-language values (the keys of `configs/{iso3}_{script}.yml`), and where they came from."""

    name: str  # iso3_Script, e.g. cmn_Hani
    word_tokenizer: str  # datatrove's word tokenizer key (`load_word_tokenizer`): the profile's name
    language_score: float
    dup_line_frac: float
    top_n_grams: tuple[tuple[int, float], ...]
    dup_n_grams: tuple[tuple[int, float], ...]
    line_punct_thr: float
    new_line_ratio: float
    max_avg_word_length: float
    min_avg_word_length: float
    max_non_alpha_words_ratio: float
    stopwords: tuple[str, ...]
    source: str  # the file, or "... + quality.profiles.zh" after an override

    @property
    def label(self) -> str:
        """What the ledger says: `fineweb-2:cmn_Hani`, with `+config` when overridden."""
        return f"fineweb-2:{self.name}" + ("+config" if "quality.profiles" in self.source else "")


def _number(value, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(f"{key}: expected a number, got {value!r}")
    return value


def _ngrams(value, key: str) -> tuple[tuple[int, float], ...]:
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], int) and not isinstance(p[0], bool)
        and p[0] >= 1 and isinstance(p[1], (int, float)) and not isinstance(p[1], bool) for p in value)
    if not ok:
        raise ProfileError(f"{key}: expected a list of [n, fraction] pairs, got {value!r}")
    return tuple((int(n), p) for n, p in value)


def _stopwords(value, key: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(w, str) and w for w in value):
        raise ProfileError(f"{key}: expected a list of words, got {value!r}")
    return tuple(value)


def _values(data: dict, where: str, required: bool) -> dict:
    """The typed values of a profile mapping (a file's, or an override's)."""
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a mapping of profile keys, got {data!r}")
    allowed = OVERRIDE_KEYS if not required else (*NUMBERS, *NGRAMS, "stopwords")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ProfileError(f"{where}.{unknown[0]}: unknown profile key (allowed: {', '.join(allowed)})")
    missing = [k for k in (*NUMBERS, *NGRAMS, "stopwords") if k not in data] if required else []
    if missing:
        raise ProfileError(f"{where}: profile key {missing[0]!r} missing")
    out = {}
    for key, value in data.items():
        if key in NUMBERS:
            out[key] = _number(value, f"{where}.{key}")
        elif key in NGRAMS:
            out[key] = _ngrams(value, f"{where}.{key}")
        elif key == "stopwords":
            out[key] = _stopwords(value, f"{where}.{key}")
        elif not isinstance(value, str) or not value:
            raise ProfileError(f"{where}.{key}: expected a string, got {value!r}")
        else:
            out[key] = value
    return out


@lru_cache(maxsize=None)
def load_profile(name_or_path: str) -> Profile:
    """A shipped profile by name (`cmn_Hani`), or a FineWeb-2-form `.yml` file by path."""
    path = Path(name_or_path) if name_or_path.endswith((".yml", ".yaml")) else PROFILES_DIR / f"{name_or_path}.yml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yml")))
        raise ProfileError(f"no language profile {name_or_path!r} ({path} not found; shipped: {shipped}; "
                           f"see stages/recipes/profiles/README.md to add one)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read the profile ({exc})") from None
    values = _values(data, str(path), required=True)
    name = path.stem
    source = f"{SOURCE} configs/{name}.yml" if path.parent == PROFILES_DIR else str(path)
    return Profile(name=name, word_tokenizer=name, source=source, **values)


@lru_cache(maxsize=1)
def _iso_table() -> dict[str, str]:
    """lid.176's codes (ISO 639-1, or ISO 639-3 where it has no 639-1) -> iso3_Script, from datatrove's table
    of word tokenizers (the one `load_word_tokenizer` reads): the row marked default for the code and script."""
    table: dict[str, str] = {}
    with open(os.path.join(ASSETS_PATH, "tokenizer_assignment.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["default_script"] != "TRUE":
                continue
            target = f"{row['code_3']}_{row['script']}"
            if row["code_1"] and row["default_code_1"] == "TRUE":
                table.setdefault(row["code_1"], target)
            table.setdefault(row["code_3"], target)
    return table


def profile_name(label: str) -> str | None:
    """The profile a language label maps to; None for English (FineWeb's recipe)."""
    if label in ENGLISH:
        return None
    if label in CHINESE:
        return "cmn_Hani"
    if _LANG_SCRIPT.match(label):
        return label
    target = _iso_table().get(label)
    if target is None:
        raise ProfileError(f"langid.languages: no language profile for label {label!r} (not a lid.176 code "
                           f"or iso3_Script name); set quality.profiles.{label}.base")
    return target


def resolve_profiles(languages, overrides: dict | None = None) -> dict[str, Profile | None]:
    """label -> its profile (None: English, FineWeb's recipe), with `quality.profiles` applied."""
    overrides = overrides or {}
    extra = sorted(set(overrides) - set(languages))
    if extra:
        raise ProfileError(f"quality.profiles.{extra[0]}: {extra[0]!r} is not in langid.languages")
    out: dict[str, Profile | None] = {}
    for label in languages:
        where = f"quality.profiles.{label}"
        over = _values(overrides.get(label) or {}, where, required=False)
        base = over.pop("base", None) or profile_name(label)
        if base is None:
            if over:
                raise ProfileError(f"{where}: English keeps FineWeb's recipe (quality.* keys); set base to "
                                   f"use a FineWeb-2 profile")
            out[label] = None
            continue
        try:
            profile = load_profile(base)
        except ProfileError as exc:
            raise ProfileError(f"{where}.base: {exc}" if "base" in (overrides.get(label) or {})
                               else f"langid.languages: {label}: {exc}") from None
        if over:
            profile = replace(profile, **over, source=f"{profile.source} + {where}")
        _check_tokenizer(profile.word_tokenizer, where)
        out[label] = profile
    return out


def _check_tokenizer(key: str, where: str) -> None:
    if key not in load_tokenizer_assignments():
        raise ProfileError(f"{where}.word_tokenizer: datatrove has no word tokenizer for {key!r}")


def check_overrides(languages, overrides: dict | None) -> None:
    """Raises ProfileError (one line) for any kept language without a usable profile or any bad override."""
    resolve_profiles(languages, overrides)


def fineweb2_filters(profile: Profile, kinds: tuple | None = None) -> list:
    """datatrove's filters configured exactly as FineWeb-2's `fineweb-2-pipeline.py` step 5 configures them:
    Gopher repetition (paragraph checks and dup_line_char_frac off), FineWeb quality (short lines off,
    char_duplicates_ratio 0.1), Gopher quality (min_stop_words 2); no C4. The one pass in stages/filters/quality.py
    reads its thresholds from these objects. `kinds`: subclasses to build instead, in that order."""
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    GopherRepetitionFilter, FineWebQualityFilter, GopherQualityFilter = kinds or (
        GopherRepetitionFilter, FineWebQualityFilter, GopherQualityFilter)
    lang = profile.word_tokenizer
    return [
        GopherRepetitionFilter(language=lang, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
                               dup_line_frac=profile.dup_line_frac, top_n_grams=profile.top_n_grams,
                               dup_n_grams=profile.dup_n_grams),
        FineWebQualityFilter(language=lang, short_line_thr=999, char_duplicates_ratio=0.1,
                             line_punct_thr=profile.line_punct_thr, new_line_ratio=profile.new_line_ratio),
        GopherQualityFilter(language=lang, max_avg_word_length=profile.max_avg_word_length,
                            min_avg_word_length=profile.min_avg_word_length, stop_words=list(profile.stopwords),
                            max_non_alpha_words_ratio=profile.max_non_alpha_words_ratio, min_stop_words=2),
    ]
