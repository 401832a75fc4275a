"""``python -m fastact tune``: never worse than the shipped defaults; show, reset, save."""

from __future__ import annotations

import json

import pytest

from fastact import _dispatch, _profile, _tune
from fastact.bench.timing import Timing
from fastact.cli import main
from fastact.table import BY_NAME

SIZES = _tune.QUICK_SIZES


@pytest.fixture
def profile_path(tmp_path, monkeypatch):
    p = tmp_path / "profile.json"
    monkeypatch.setenv("FASTACT_PROFILE", str(p))
    yield p
    monkeypatch.undo()
    _dispatch.load_profile()


def _t(s: float) -> Timing:
    return Timing(best=s, median=s, samples=3, number=1)


def _fake(monkeypatch, candidate_speed: float):
    """Sweeps that call for "never parallel"; the candidate then runs at
    ``candidate_speed`` times the default's time in the side-by-side check."""
    threads = 4
    monkeypatch.setattr(_tune, "get_num_threads", lambda: threads)
    monkeypatch.setattr(
        _tune,
        "measure",
        lambda e, p, d, sizes, *a: {
            ("cython", 1): [1.0] * len(sizes),
            ("cython", threads): [2.0] * len(sizes),
        },
    )
    seen = []

    def together(jobs, min_time):
        seen.append(set(jobs))
        return {"default": _t(1.0), "candidate": _t(candidate_speed)}

    monkeypatch.setattr(_tune, "measure_together", together)
    return seen


def test_a_candidate_no_faster_than_the_default_is_dropped(monkeypatch):
    _fake(monkeypatch, 0.99)
    lines = []
    plans = _tune.tune(["relu"], quick=True, progress=False, report=lines.append)
    assert plans == {}
    assert lines and all("dropped" in ln and "not faster beyond noise" in ln for ln in lines)


def test_a_candidate_faster_beyond_noise_is_kept_and_explained(monkeypatch):
    seen = _fake(monkeypatch, 0.5)
    lines = []
    plans = _tune.tune(["relu"], quick=True, progress=False, report=lines.append)
    assert set(plans) == {
        f"relu/{p}/{d}" for p in ("forward", "backward") for d in _tune.tuned_dtypes()
    }
    assert all(p.serial_below == _profile.NEVER for p in plans.values())
    assert all("kept" in ln and "always serial" in ln and "0.50x" in ln for ln in lines)
    assert seen and all(s == {"default", "candidate"} for s in seen)


def test_verify_compares_only_where_the_plans_differ(monkeypatch):
    seen = _fake(monkeypatch, 0.5)
    entry = BY_NAME["relu"]
    plan = _dispatch.default_plan(entry, "forward", "float32")
    keep, why = _tune.verify(entry, "forward", "float32", plan, plan, SIZES, 4, 0.0)
    assert not keep and "same choices" in why and not seen


def test_quick_saves_only_when_asked(monkeypatch, profile_path, capsys):
    _fake(monkeypatch, 0.5)
    assert main(["tune", "--quick", "--activation", "relu"]) == 0
    assert "nothing saved" in capsys.readouterr().out
    assert not profile_path.exists()
    assert main(["tune", "--quick", "--save", "--activation", "relu"]) == 0
    data = json.loads(profile_path.read_text())
    assert set(data["plans"]) == {
        f"relu/{p}/{d}" for p in ("forward", "backward") for d in _tune.tuned_dtypes()
    }
    assert main(["tune", "--show"]) == 0
    out = capsys.readouterr().out
    assert "relu/forward/float32" in out and "never parallel" in out
    assert main(["tune", "--reset"]) == 0
    assert not profile_path.exists()
    assert "defaults" in capsys.readouterr().out


def test_dry_run_and_unknown_names(monkeypatch, profile_path, capsys):
    _fake(monkeypatch, 0.5)
    assert main(["tune", "--dry-run", "--activation", "relu"]) == 0
    assert "dry run" in capsys.readouterr().out and not profile_path.exists()
    assert main(["tune", "--activation", "nope"]) == 2
