"""EXPECTED_FAILURES — the op oracle's known defects, one entry per case ("op: label").

Each entry is a disagreement with the reference that is a real defect of moongrad,
already filed and being fixed elsewhere; check.py reports these cases as "xfail"
while they still fail, and as a failure once they pass, so that the entry is deleted
with the fix. Nothing else belongs here: a new disagreement is fixed, or filed and
listed here with the issue item it belongs to.
"""
EXPECTED_FAILURES = {
}
