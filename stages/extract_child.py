"""What trafilatura's child process runs (see stages/extract.py), in a module of its own.

The child unpickles the function it is given, importing that function's module: from here it imports
trafilatura and nothing of the pipeline, ~55 MB less per worker than unpickling the Extractor step.
"""


def extract_text(html: str, favor_precision: bool, deduplicate: bool) -> str | None:
    """datatrove's `Trafilatura.extract`: trafilatura's `extract` without comments."""
    from trafilatura import extract  # in the extraction child only: the parent never imports trafilatura

    return extract(html, favor_precision=favor_precision, include_comments=False, deduplicate=deduplicate)
