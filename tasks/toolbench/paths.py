"""Where the offline data lies: ``$TOOLRL_SHARED_DATA``, else ``../shared/data`` next to the
repository (the project's layout), else ``shared/data`` inside it (the device machines' copy)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    candidates = [os.environ.get("TOOLRL_SHARED_DATA"), REPO.parent / "shared" / "data", REPO / "shared" / "data", "/work/shared/data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise FileNotFoundError("no shared data folder: set TOOLRL_SHARED_DATA (tried ../shared/data and shared/data)")


def stabletoolbench_queries_dir() -> Path:
    return shared_data_dir() / "stabletoolbench" / "solvable_queries" / "test_instruction"


def toolbench_sample_dir() -> Path:
    """ToolBench's ``data_example`` (answer/, instruction/, toolenv/)."""
    return shared_data_dir() / "toolbench" / "data_example"
