"""bench/vs_trl.py's own argument handling. Never builds the TRL virtualenv nor runs the benchmark
(that takes minutes and a network; it is not part of CI)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "bench" / "vs_trl.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_help_names_the_options():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    for option in ("--batch-sizes", "--repeats", "--venv", "--setup-only", "--no-append"):
        assert option in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-sizes", "48"], "48 must divide 256"),
        (["--batch-sizes", "512"], "512 must divide 256"),
        (["--batch-sizes", "8"], "multiple of --minibatch-size 16"),
        (["--batch-sizes", "0"], "expected a positive integer, got 0"),
        (["--batch-sizes", "sixteen"], "expected a positive integer, got 'sixteen'"),
        (["--batch-sizes", "16", "16"], "each batch size once"),
        (["--repeats", "-1"], "expected a positive integer"),
    ],
)
def test_bad_arguments_fail_fast_with_a_clear_message(args, message, tmp_path):
    # a venv path that does not exist: had parsing passed, the script would try to build it
    out = run(*args, "--venv", str(tmp_path / "venv"))
    assert out.returncode == 2
    assert message in out.stderr
    assert not (tmp_path / "venv").exists()


def test_parse_args_defaults_and_valid_sizes():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import vs_trl
    finally:
        sys.path.remove(str(REPO / "bench"))
    args = vs_trl.parse_args([])
    assert args.batch_sizes == [16, 64, 256] and args.minibatch_size == 16 and args.repeats >= 1
    args = vs_trl.parse_args(["--batch-sizes", "8", "32", "--minibatch-size", "8", "--repeats", "1"])
    assert args.batch_sizes == [8, 32] and args.minibatch_size == 8
