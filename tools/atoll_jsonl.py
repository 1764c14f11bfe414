"""Reading JSON-lines files written by the guest's tools and the benchmarks
(results.jsonl, points.jsonl, costmodel.jsonl): one object a line, blank
lines skipped, anything else reported with its line number, never raised."""
import json


def read_lines(path):
    """path -> (rows, bad): rows as (line number, line, object) for every
    line holding a JSON object, bad as (line number, line, reason). A
    missing file gives ([], [])."""
    rows, bad = [], []
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return rows, bad
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                bad.append((n, line, f"bad JSON: {e}"))
                continue
            if not isinstance(obj, dict):
                bad.append((n, line, "not a JSON object"))
                continue
            rows.append((n, line, obj))
    return rows, bad
