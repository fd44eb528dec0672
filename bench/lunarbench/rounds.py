"""Several rounds of the matrix, folded into one figure per cell and target.

On a shared machine the same cell moves by a factor of two from one minute to the next, and a
single pair of runs can land a ratio on either side of a goal. With `--rounds N` the whole
interleaved matrix runs N times; each figure reported is the median over the rounds, and each
goal is the median of the values it took round by round. A goal's value in one round compares
two runs made one right after the other, so drift between rounds cancels out of it; the median
then drops the rounds where something else on the machine hit one of the two.
"""

from . import report
from .report import median

# Row fields (beyond the metrics) that are folded into their median.
_NUMERIC_FIELDS = ("target_cpu_us_per_io", "client_cpu_cores", "client_cpus_busy",
                   "target_reactors_busy", "target_busy_us_per_io",
                   "target_instructions_per_io", "elapsed_s")


def _median_metrics(metrics_list):
    """Every number of the metrics (and of their latency table), each its own median."""
    out = {}
    for key in metrics_list[0]:
        values = [m.get(key) for m in metrics_list]
        if all(isinstance(v, dict) or v is None for v in values) and any(values):
            tables = [v for v in values if v]
            out[key] = {k: median([t.get(k) for t in tables]) for k in tables[0]}
        elif all(isinstance(v, (int, float)) or v is None for v in values):
            out[key] = median(values)
        else:
            out[key] = values[0]
    return out


def fold(rows):
    """One row per (cell, target) from the rows of every round, in the order they first ran.

    A row's figures are medians over the rounds that measured it; `round_iops` lists every
    round's IOPS (None where that round failed). A cell that failed in every round keeps the
    first error; one that failed in some rounds only notes it in `round_errors`."""
    groups = {}
    for row in rows:
        groups.setdefault((row["cell"], row["target"]), []).append(row)
    folded = []
    for group in groups.values():
        measured = [r for r in group if r.get("metrics") and not r.get("error")]
        first = group[0]
        out = {"cell": first["cell"], "title": first["title"], "target": first["target"],
               "command": first.get("command"), "rounds": len(group),
               "round_iops": [(r.get("metrics") or {}).get("iops") if not r.get("error")
                              else None for r in group]}
        errors = [r["error"] for r in group if r.get("error")]
        if not measured:
            out.update(metrics=None, error=errors[0] if errors else "no round measured it")
            folded.append(out)
            continue
        out["metrics"] = _median_metrics([r["metrics"] for r in measured])
        out["error"] = None
        if errors:
            out["round_errors"] = errors
        for field in _NUMERIC_FIELDS:
            value = median([r.get(field) for r in measured])
            if value is not None:
                out[field] = value
        folded.append(out)
    return folded


def goals(rows):
    """The goals of issue 5 over several rounds: each one's median over the rounds where it
    could be computed, with every round's value in `round_values`."""
    by_round = {}
    for row in rows:
        by_round.setdefault(row.get("round", 1), []).append(row)
    per_round = [report.goals(report.by_cell(round_rows))
                 for _, round_rows in sorted(by_round.items())]
    out = []
    for i, goal in enumerate(per_round[0]):
        values = [round_goals[i]["value"] for round_goals in per_round]
        value = median(values)
        busy = median([round_goals[i].get("client_cpus_busy") for round_goals in per_round])
        reactors = median([round_goals[i].get("lunar_reactors_busy")
                           for round_goals in per_round])
        out.append({**goal, "value": value,
                    "met": report.is_met(value, goal["threshold"], goal["at_least"]),
                    "round_values": values, "client_cpus_busy": busy,
                    "lunar_reactors_busy": reactors})
    return out
