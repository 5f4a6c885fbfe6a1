"""What a search found: the Pareto front of its finished trials, as a table and as `tune/front.json` (the
report plots it), and `--pick`: a trial's INT8 model made the run's student."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from tinykd.core.artifacts import RunLayout, atomic_path, write_json
from tinykd.core.errors import TinykdError
from tinykd.train.tune.trial import COST_SOURCE, STEM, TRIAL_FILE, feasible, size_text

log = logging.getLogger(__name__)

FRONT_FILE = "front.json"
DEFAULT_FILE = "default.json"
"""The run's own student measured the same way (tune/default/), for comparison."""
PICKED_STEM = "tuned"
"""The picked trial's INT8 model in the run folder: tuned_int8.tflite."""


def dominates(a: dict, b: dict) -> bool:
    """a is at least as good as b in accuracy, instructions and RAM, and better in one."""
    at_least = (a["accuracy"] >= b["accuracy"] and a["instructions"] <= b["instructions"]
                and a["ram_bytes"] <= b["ram_bytes"])
    better = (a["accuracy"] > b["accuracy"] or a["instructions"] < b["instructions"]
              or a["ram_bytes"] < b["ram_bytes"])
    return at_least and better


def front(trials: list[dict], max_ms: float) -> list[dict]:
    """The feasible trials (fit the board, under max_ms) that no other feasible trial dominates, by
    accuracy (best first)."""
    ok = [t for t in trials if feasible(t["metrics"], max_ms)]
    members = [t for t in ok if not any(dominates(o["metrics"], t["metrics"]) for o in ok)]
    return sorted(members, key=lambda t: (-t["metrics"]["accuracy"], t["metrics"]["instructions"]))


def finished_trials(layout: RunLayout) -> list[dict]:
    """Every finished trial of the run, from its folder's trial.json, by number."""
    trials = []
    for path in layout.tune.glob(f"*/{TRIAL_FILE}"):
        if path.parent.name.isdigit():
            trials.append(json.loads(path.read_text()))
    return sorted(trials, key=lambda t: t["trial"])


def default_student(layout: RunLayout) -> dict | None:
    path = layout.tune / DEFAULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_front(layout: RunLayout, board, max_ms: float, study: str) -> dict:
    """tune/front.json: every finished trial, the front, the run's own student, the board."""
    trials = finished_trials(layout)
    members = front(trials, max_ms)
    default = default_student(layout)
    record = {"study": study, "board": {"name": board.name, "cpu": board.cpu, "clock_hz": board.clock_hz},
              "max_ms": max_ms, "instructions_from": COST_SOURCE, "trials": trials,
              "front": [t["trial"] for t in members], "default": default,
              "dominate_default": [t["trial"] for t in members
                                   if default and dominates(t["metrics"], default["metrics"])]}
    write_json(layout.tune / FRONT_FILE, record)
    return record


def student_text(params: dict) -> str:
    """tiny_conv x1.24, with +N for N extra blocks of depth."""
    depth = params.get("depth", 0)
    return f"{params['architecture']} x{params['width']:.2f}" + (f" +{depth}" if depth else "")


def front_table(record: dict) -> str:
    """The front (and the run's own student) as text: accuracy, instructions, ms, RAM, flash."""
    clock = record["board"]["clock_hz"]
    lines = [f"Pareto front on {record['board']['name']} ({record['board']['cpu']}, {clock / 1e6:.0f} MHz), "
             f"{len(record['front'])} of {len(record['trials'])} finished trials; instructions measured on "
             f"QEMU, ms = instructions / clock",
             f"{'trial':>7} {'student':<30} {'px':>5} {'val acc':>8} {'test acc':>8} {'instructions':>13} "
             f"{'ms':>8} {'RAM':>9} {'flash':>9}"]
    by_number = {t["trial"]: t for t in record["trials"]}
    rows = [(str(n), by_number[n]) for n in record["front"]]
    if record.get("default"):
        rows.append(("default", record["default"]))
    for label, trial in rows:
        p, m = trial["params"], trial["metrics"]
        student = student_text(p)
        if "alpha" in p:
            student += f" a{p['alpha']:.2f} T{p['temperature']:.1f}"
        lines.append(f"{label:>7} {student:<30} {size_text(p['image_size']):>5} {m['accuracy']:>8.2%} "
                     f"{m['test_accuracy']:>8.2%} {m['instructions']:>13,} {m['ms']:>8.3f} {m['ram_bytes']:>9,} "
                     f"{m['flash_bytes']:>9,}")
    if record.get("default"):
        better = record["dominate_default"]
        lines.append(f"trial(s) {', '.join(map(str, better))} beat the default student in accuracy, instructions "
                     "and RAM" if better else "no trial beats the default student in accuracy, instructions and RAM")
    return "\n".join(lines)


def choose(layout: RunLayout, selector: list[str]) -> dict:
    """The trial `--pick` names: a trial number, or `best-under MS`: the most accurate trial that fits the
    board and runs in at most MS milliseconds at its clock."""
    number = budget = None
    if len(selector) == 1 and selector[0].isdigit():
        number = int(selector[0])
    elif len(selector) == 2 and selector[0] == "best-under":
        try:
            budget = float(selector[1])
        except ValueError:
            raise TinykdError(f"--pick best-under {selector[1]}: MS must be a number of milliseconds") from None
    else:
        raise TinykdError(f"--pick {' '.join(selector)}: give a trial number or best-under MS")
    trials = finished_trials(layout)
    if not trials:
        raise TinykdError(f"{layout.tune}: no finished trials; run `tinykd tune --board B` first")
    if number is not None:
        found = [t for t in trials if t["trial"] == number]
        if not found:
            raise TinykdError(f"{layout.tune}: no finished trial {number} (finished: "
                              f"{', '.join(str(t['trial']) for t in trials)})")
        return found[0]
    ok = [t for t in trials if feasible(t["metrics"], budget)]
    if not ok:
        fastest = min(t["metrics"]["ms"] for t in trials)
        raise TinykdError(f"--pick best-under {budget:g}: no finished trial fits the board in {budget:g} ms "
                          f"(the fastest takes {fastest:.3f} ms)")
    return max(ok, key=lambda t: (t["metrics"]["accuracy"], -t["metrics"]["instructions"]))


def pick(layout: RunLayout, trial: dict) -> Path:
    """Make a trial's INT8 model the run's student: copied to `tuned_int8.tflite`, recorded in
    tune/pick.json; `tinykd build` and `verify` use it from then on."""
    source = RunLayout(layout.trial(trial["trial"])).int8(STEM)
    if not source.is_file():
        raise TinykdError(f"{source}: the trial's INT8 model is missing")
    target = layout.int8(PICKED_STEM)
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    write_json(layout.pick, {"trial": trial["trial"], "model": str(target), "from": str(source),
                             "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                             "params": trial["params"], "metrics": trial["metrics"], "board": trial["board"]})
    return target


def picked_student(layout: RunLayout) -> Path | None:
    """The INT8 model `tinykd tune --pick` made the run's student, if any."""
    if not layout.pick.exists():
        return None
    target = layout.int8(PICKED_STEM)
    if not target.is_file():
        raise TinykdError(f"{layout.pick}: names {target}, which is missing; pick a trial again "
                          "(tinykd tune --pick TRIAL)")
    return target
