"""Fault injection (local servers only): retries, clear errors, a SIGKILLed merge, and the summary shape."""

from __future__ import annotations

from pathlib import Path

from georeset.reliability import run_reliability, scenario_merge_killed


def test_quick_scenarios_lose_nothing(tmp_path: Path) -> None:
    s = run_reliability(workdir=tmp_path, only=["mediawiki_transient", "mediawiki_bad_json", "stac_down"])
    assert s["unexpected"] == [], s
    assert s["rows_lost"] == 0 and s["duplicates"] == 0 and s["faults_injected"] >= 9
    assert set(s) >= {"faults_injected", "runs", "rows_lost", "duplicates", "scenarios"}
    assert all("STAC API" in e for e in s["scenarios"]["stac_down"]["errors_reported"])


def test_merge_killed_inside_its_transaction_leaves_the_catalogue_as_it_was(tmp_path: Path) -> None:
    r = scenario_merge_killed(tmp_path, n_rows=2000)
    assert r["killed_inside_transaction"], r
    assert r["count_after_kill"] == r["count_before"] == 100
    assert r["staged_files_kept"] == 1
    assert r["count_after_retry"] == r["count_after_second_merge"] == 2100
    assert r["second_merge_inserted"] == 0 and r["duplicates"] == 0 and r["ok"]
