"""What every command module shares: the example epilog, JSON output, errors as one line."""

from __future__ import annotations

import argparse
import json


def example(text: str) -> dict:
    return {"epilog": "example:\n  " + text, "formatter_class": argparse.RawDescriptionHelpFormatter}


def print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))
