"""One module per pipeline stage, each a small datatrove step."""

import contextlib
import sys


@contextlib.contextmanager
def without_torch():
    """Import spaCy or presidio inside this, and PyTorch is not imported with them.

    thinc (under spaCy) and presidio import torch whenever it is installed (the `train` extra installs it):
    ~200 MB in every worker, for blank tokenizers and regex recognizers that never use it. Inside the block
    `import torch` fails, so they record "no torch"; afterwards torch imports normally again. Does nothing
    when torch is already imported.
    """
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None  # an ImportError for `import torch`, as if it were not installed
    try:
        yield
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
