"""What the config names, checked before any work: the files exist and are what they claim to be.

The config's types and ranges are checked when it is read (`pipeline.plan.config`); here the things it
points at: the language model and its labels, the blocklist folder, the tokenizer vocabulary (parsed). Each
problem is a `ConfigError` whose `.key` names the setting, so the command line can name the flag instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.plan.config import Config, ConfigError
from stages.filters.blocklist import PROJECT_LISTS
from stages.filters.langid import default_model_path
from stages.filters.quality import FILTERS, params, tunable
from stages.recipes.profiles import ProfileError, check_overrides
from stages.tokens.tokenize import BPETokenizer, TokenizerError
from stages.utils.loading import fasttext_labels


def check_config(config: Config) -> None:
    """Raise `ConfigError` (one line, `.key` set) for the first thing the config names that cannot be used."""
    _check_langid(config)
    try:  # every kept language has a profile (stages/recipes/profiles), and the overrides are valid
        check_overrides(config.langid.languages, config.quality.profiles)
    except ProfileError as exc:
        raise ConfigError(str(exc), key="quality.profiles") from None
    _check_quality(config)
    if config.blocklist.enabled and config.blocklist.lists_dir is not None:
        check_lists_dir(config.blocklist.lists_dir)
    _check_tokenizer(config.tokenizer.name, config.tokenizer.eot_token)


def _check_langid(config: Config) -> None:
    path = config.langid.model or default_model_path()
    if not os.path.isfile(path):
        raise ConfigError(f"langid.model: {path}: no such file (a fastText lid.176.bin or .ftz)", key="langid.model")
    try:
        labels = fasttext_labels(path)
    except (ValueError, RuntimeError, MemoryError) as exc:
        raise ConfigError(f"langid.model: {path}: not a fastText model ({str(exc).splitlines()[0][:80]})",
                          key="langid.model") from None
    known = {label.removeprefix("__label__") for label in labels}
    unknown = [language for language in config.langid.languages if language not in known]
    if unknown:
        sample = ", ".join(sorted(known)[:8])
        raise ConfigError(f"langid.languages: {unknown[0]!r} is not a label of the model {os.path.basename(path)} "
                          f"({len(known)} ISO codes such as {sample})", key="langid.languages")


def _check_quality(config: Config) -> None:
    """The thresholds a filter's mapping changes are that datatrove filter's; the classifier model loads."""
    for name in FILTERS:
        allowed = tunable(name)
        for key in params(getattr(config.quality, name)):
            if key not in allowed:
                raise ConfigError(f"quality.{name}: unknown threshold {key!r} (allowed: {', '.join(allowed)})",
                                  key=f"quality.{name}")
    c = config.quality.classifier
    if c.model is None:
        return
    if not os.path.isfile(c.model):
        raise ConfigError(f"quality.classifier.model: {c.model}: no such file (a fastText supervised model; "
                          "`ccpipe classifier train` makes one)", key="quality.classifier.model")
    try:
        labels = fasttext_labels(c.model)
    except (ValueError, RuntimeError, MemoryError) as exc:
        raise ConfigError(f"quality.classifier.model: {c.model}: not a fastText model "
                          f"({str(exc).splitlines()[0][:80]})", key="quality.classifier.model") from None
    known = [label.removeprefix("__label__") for label in labels]
    if c.label not in known:
        raise ConfigError(f"quality.classifier.label: {c.label!r} is not a label of {c.model} ({', '.join(known)})",
                          key="quality.classifier.label")


def check_lists_dir(lists_dir: str) -> None:
    if not os.path.isdir(lists_dir):
        raise ConfigError(f"blocklist.lists_dir: {lists_dir}: no such directory", key="blocklist.lists_dir")
    if not any(os.path.isfile(os.path.join(lists_dir, f"{name}.txt")) for name in PROJECT_LISTS):
        raise ConfigError(f"blocklist.lists_dir: {lists_dir}: holds none of the lists "
                          f"({', '.join(n + '.txt' for n in PROJECT_LISTS)})", key="blocklist.lists_dir")


def _check_tokenizer(name: str, eot_token: str) -> None:
    """Load the vocabulary and encode a word: a README or a vocab.json fails here, not in the last phase."""
    try:
        tokenizer = BPETokenizer(name, eot_token)
        tokenizer.encode_batch(["ccpipe"])
        tokenizer.eot  # noqa: B018 - the end-of-text token must exist
    except TokenizerError as exc:
        raise ConfigError(f"tokenizer.name: {exc}", key="tokenizer.name") from None
    # tiktoken and tokenizers raise a variety (ValueError, binascii.Error, tokenizers' plain Exception)
    except Exception as exc:  # noqa: BLE001
        what = "a Hugging Face tokenizer.json" if name.endswith(".json") else "a .tiktoken vocabulary"
        cause = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        if name.endswith(".json"):
            cause = _json_cause(name, cause)
        raise ConfigError(f"tokenizer.name: {name}: not {what} ({cause})", key="tokenizer.name") from None


def _json_cause(path: str, cause: str) -> str:
    """Why a .json file is no tokenizer: bad JSON, or JSON of another kind (tokenizers reports both as a
    serde error, `expected , or }` for a file that is perfectly valid JSON)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return cause
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if not isinstance(data, dict):
        return f"valid JSON, but a {type(data).__name__}, not a tokenizer's object with a \"model\""
    keys = ", ".join(list(data)[:6]) or "none"
    if "model" not in data:
        return f"valid JSON, but no \"model\" section as a tokenizer.json has (its top-level keys: {keys})"
    return f"valid JSON with a \"model\", but tokenizers cannot load it: {cause}"


# GPT-2's vocabulary was learnt on English web text: other scripts cost many more tokens. Measured on the same
# 94 Chinese documents of warc/zh (bench): 305,409 GPT-2 tokens against 172,058 with cl100k_base (-44 %).
WIDER_VOCABULARIES = "cl100k_base or o200k_base (--tokenizer)"


def notices(config: Config) -> list[str]:
    """What the user may want to know before a run that works as asked: said once, on the command line."""
    others = [lang for lang in config.langid.languages if lang != "en"]
    if config.tokenizer.name == "gpt2" and others:
        return [f"keeping {', '.join(others)} with GPT-2's English vocabulary: {WIDER_VOCABULARIES} need ~45 % "
                "fewer tokens for Chinese (bench: 172,058 with cl100k_base, 305,409 with GPT-2, for the same zh "
                "documents)"]
    return []
