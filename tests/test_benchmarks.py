"""The benchmarks run and write what the site's benchmarks page reads. Timings are never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

COMMITTED = sorted((ROOT / "benchmarks" / "results").glob("*.json"))


def _check_result(r: dict) -> None:
    for key in ("name", "title", "description", "script", "measured", "machine", "columns", "rows"):
        assert key in r, f"a benchmark result needs `{key}`"
    assert r["rows"], f"{r['name']}: no rows"
    for row in r["rows"]:
        assert list(row) == r["columns"], f"{r['name']}: a row's keys {list(row)} are not the columns {r['columns']}"
    assert r["machine"]["torch_threads"] == 1, f"{r['name']}: measured with {r['machine']['torch_threads']} torch threads, not 1"
    assert (ROOT / r["script"]).is_file()
    if "target" in r:
        assert isinstance(r["met"], bool) and r["target"]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_committed_results_have_the_format_the_page_reads(path):
    _check_result(json.loads(path.read_text()))


def test_the_issue_s_targets_are_recorded():
    names = {p.stem: json.loads(p.read_text()) for p in COMMITTED}
    for name in ("tensor_engine", "gpt_forward", "kv_cache", "gpt_hf_forward", "gpt_hf_generation", "ppo_cartpole", "dqn_cartpole",
                 "induction", "patching_activation", "patching_attribution", "superposition_sweep", "sae_toy", "sae_char_lm"):
        assert "target" in names[name], f"{name}.json should state its target and whether it was met"


@pytest.mark.slow
def test_every_benchmark_runs_quickly_without_touching_the_committed_results(tmp_path):
    before = {p.name: p.read_bytes() for p in COMMITTED}
    out = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == sorted(before), f"the quick run wrote {written}, the committed results are {sorted(before)}"
    for path in tmp_path.glob("*.json"):
        _check_result(json.loads(path.read_text()))
    assert {p.name: p.read_bytes() for p in COMMITTED} == before, "a quick run overwrote the committed results"
