-- tour.lua — a short tour of moongrad's tensors and ops, printing as it goes.
--
--   moongrad examples/tour.lua        (or: make demo)
--
-- Creation, dtypes and promotion, broadcasting, reductions, matmul, views and
-- slicing, random numbers with a seed, printing. Runs in well under a second;
-- the asserts make it a test too (tests/run.sh runs every example).

local mg = require "moongrad"

local function section(title) print(("\n-- %s %s"):format(title, ("-"):rep(60 - #title))) end

section("creation")
local a = mg.tensor{{1, 2, 3}, {4, 5, 6}}         -- Lua integers give int64
print("a =", a)
print("shape", table.concat(a.shape, "x"), "dtype", a.dtype, "ndim", a.ndim, "numel", a:numel())
print("zeros", mg.zeros{2, 2})
print("ones int32", mg.ones({3}, mg.int32))
print("full", mg.full({2, 3}, 0.5))
print("arange", mg.arange(1, 10, 2))
print("linspace", mg.linspace(0, 1, 5))
print("eye", mg.eye(3))

section("dtypes and promotion")
local f = mg.tensor({1.5, 2.5}, mg.float64)
print("int64 + float64 ->", (mg.tensor{1, 2} + f).dtype)
-- a plain Lua number is a weak scalar: it adopts the tensor's dtype
print("float32 * 2 ->", (mg.ones{2} * 2).dtype)
print("int64 * 0.5 ->", (mg.tensor{1, 2} * 0.5).dtype, mg.tensor{1, 2} * 0.5)
print("cast", mg.cast(mg.tensor{1.9, -1.9}, mg.int32))
print("comparison gives bool", mg.less(a, 3))
assert((mg.ones{2} * 2).dtype == "float32")

section("broadcasting")
local col = mg.tensor{{10}, {20}}                  -- (2,1)
local row = mg.tensor{1, 2, 3}                     -- (3)
print("(2,1) + (3) =", col + row)
print("a - column means", a - a:mean{axis = 1})   -- mean over axis 1 has shape (3)

section("reductions")
print("sum", a:sum(), "sum axis 1", a:sum{axis = 1}, "sum axis 2", a:sum(2))
print("mean", a:mean(), "max", a:max(), "argmax (1-based)", a:argmax{axis = 2})
print("keepdims", a:sum{axis = 2, keepdims = true})
assert(a:sum():item() == 21)

section("matmul")
local m = mg.tensor{{1, 2}, {3, 4}}
print("m @ m", mg.matmul(m, m))
print("m @ eye", m:cast(mg.float32):matmul(mg.eye(2)))
local batch = mg.ones{4, 2, 3}:matmul(mg.ones{3, 5})   -- batch dims broadcast
print("batched shape", table.concat(batch.shape, "x"))
assert(mg.matmul(m, m):totable()[2][2] == 22)

section("views and slicing (1-based, inclusive)")
local t = mg.arange(12):reshape{3, 4}
print("t", t)
print("t[2] (second row)", t[2])
print("t:slice{{1, 2}, {2, -1, 2}}", t:slice{{1, 2}, {2, -1, 2}})
print("transpose", t:transpose())
local v = t:reshape{2, 6}                           -- a view: same storage
t[1] = mg.tensor{-1, -1, -1, -1}                    -- writes through to v
print("view sees the write", v[1])
assert(v[1]:totable()[1] == -1)

section("random, reproducible with a seed")
mg.random.seed(42)
local r1 = mg.random.uniform({3})
mg.random.seed(42)
local r2 = mg.random.uniform({3})
print("uniform", r1)
print("same seed, same numbers:", mg.equal(r1, r2):all():item())
print("normal", mg.random.normal({2, 2}, 0, 1))
print("integers 1..6", mg.random.integers({8}, 1, 6))
assert(mg.equal(r1, r2):all():item())

section("printing")
print(mg.tensor(3.25))
print(mg.tensor{true, false})
print(mg.arange(2000):reshape{40, 50}:cast(mg.float32) / 7)  -- summarised with ...
print(a:totable()[2][3], a[2][3]:item())
