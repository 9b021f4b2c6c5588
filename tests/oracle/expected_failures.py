"""EXPECTED_FAILURES — the op oracle's known defects: "op: label" -> the defect.

Each entry is a case whose disagreement with the reference is a real defect of
moongrad that is filed and being fixed elsewhere. check.py reports these cases as
"xfail" (counted as skipped) while they still fail, and as a FAILURE once they pass
("now passes: delete its entry"), so an entry goes with the fix that makes it pass.
Nothing else belongs here: a new disagreement is fixed at its mechanism, or filed and
listed here with the issue it belongs to. The repros are in the entries' cases
(tests/oracle/cases.lua) and in the notes of issue 14.
"""
ITEM7 = "issue 14 item 7, being fixed: "
NEW = "found by the oracle, not yet fixed: "

EXPECTED_FAILURES = {
    # (empty: the defects of issue 14 item 7 and the oracle's findings are fixed; add an entry with
    #  the reason when a known disagreement must wait for its fix)
}
