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
    # ---- issue 14 item 7 (the outside op suite's findings) ----
    "matmul: float32 vector . vector": ITEM7 + "the gradient of vector . vector matmul raises (unsqueeze axis -2)",
    "matmul: float64 vector . vector": ITEM7 + "the gradient of vector . vector matmul raises (unsqueeze axis -2)",
    "tile: float32 5-d": ITEM7 + "tile's gradient refuses more than 4 dimensions",
    "tile: float64 5-d": ITEM7 + "tile's gradient refuses more than 4 dimensions",
    "flip: float32 axis={}": ITEM7 + "flip with axis={} flips every axis",
    "flip: float64 axis={}": ITEM7 + "flip with axis={} flips every axis",
    "pow: float32 x^0 at 0": ITEM7 + "d/dx x^0 is NaN at x = 0",
    "pow: float64 x^0 at 0": ITEM7 + "d/dx x^0 is NaN at x = 0",
    "prod: float32 zeros": ITEM7 + "prod's gradient is NaN at an exact zero",
    "prod: float64 zeros": ITEM7 + "prod's gradient is NaN at an exact zero",
    "variance: float32 correction = N": ITEM7 + "var with correction >= N gives NaN, not inf",
    "variance: float32 correction > N": ITEM7 + "var with correction >= N gives NaN, not inf",
    "variance: float64 correction = N": ITEM7 + "var with correction >= N gives NaN, not inf",
    "variance: float64 correction > N": ITEM7 + "var with correction >= N gives NaN, not inf",
    "mg.std: correction = N gives inf": ITEM7 + "std with correction >= N gives NaN, not inf",
    "max_pool2d: int32 max_pool2d of ints": ITEM7 + "max_pool2d refuses integer tensors",
    "max_pool2d: int64 max_pool2d of ints": ITEM7 + "max_pool2d refuses integer tensors",
    "max_pool2d: uint8 max_pool2d of ints": ITEM7 + "max_pool2d refuses integer tensors",
    "linspace: to bool raises": ITEM7 + "linspace to bool returns a value",
    "mg.arange: mg.arange(1, 6, nil, mg.float32)": ITEM7 + "mg.arange drops the dtype when step is nil",
    "mg.arange: mg.arange{stop=6, dtype='float32'}": ITEM7 + "mg.arange refuses an options table",
    "mg.tensor: mg.tensor{a = 1, b = 2} raises": ITEM7 + "mg.tensor of a table with keys gives an empty tensor",
    "add: uint8 + 300 raises": ITEM7 + "a weak scalar the dtype cannot hold wraps (uint8 250 + 300 = 38)",
    "mul: int32 * 2^40 raises": ITEM7 + "a weak scalar the dtype cannot hold wraps",
    "mg.tensor: mg.tensor(2^40, mg.int32) raises": ITEM7 + "mg.tensor(2^40, mg.int32) gives 0",
    # ---- found by the oracle (reported with repros; fixes outside one kernel or rule) ----
    "sum: axis={} names no axis": NEW + "reductions read an empty axis list as 'all axes' "
                                        "(NumPy and TF: no axis, the identity); the class of flip's axis={}",
}
