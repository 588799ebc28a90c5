"""Importing `stages` patches nothing; `stages.utils.patches.apply()` patches, once, and only tested versions."""

import json
import subprocess
import sys

from stages.utils import patches
from tests.conftest import ROOT

STATE = """
import functools, json, pkgutil, importlib
import stages
for m in pkgutil.walk_packages(stages.__path__, "stages."):
    importlib.import_module(m.name)
from datatrove.utils import _import_utils
import datatrove.pipeline.dedup.minhash as minhash
from loguru._better_exceptions import ExceptionFormatter
from tqdm import tqdm
def state():
    return {"datatrove": _import_utils._is_distribution_available.__module__,
            "loguru": isinstance(ExceptionFormatter.__dict__["_get_lib_dirs"].__func__, functools._lru_cache_wrapper),
            "minhash": minhash.tqdm is not tqdm}
before = state()
from stages.utils import patches
%s
print(json.dumps({"before": before, "applied": applied, "after": state()}))
"""


def run_state(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", STATE % code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_stages_patches_nothing_and_apply_patches_once():
    out = run_state("applied = patches.apply(); applied = patches.apply()")
    assert out["before"] == {"datatrove": "datatrove.utils._import_utils", "loguru": False, "minhash": False}
    assert out["applied"] == sorted(patches.PATCHES)
    assert out["after"] == {"datatrove": "stages.utils.patches", "loguru": True, "minhash": True}


def test_an_untested_version_is_left_unpatched():
    out = run_state("patches.TESTED = {'datatrove': ('0.0',), 'loguru': ('0.0',)}; applied = patches.apply()")
    assert out["applied"] == []
    assert out["after"] == out["before"]
