-- autograph_converge.lua — a while-not-converged iteration staged by AutoGraph.
--
--   moongrad examples/autograph_converge.lua       (MG_QUICK=1: a smaller matrix)
--
-- Power iteration finds the dominant eigenvalue of a symmetric matrix: repeat
-- v = A v / |A v| until the estimate stops changing. How many iterations that
-- takes depends on the matrix, so the loop must be a graph while node, not an
-- unrolled Lua loop. The loop is plain Lua with a `break` and a comparison on
-- tensors; AutoGraph stages it (the break becomes a flag in the loop
-- condition). The result is checked against the same function run as plain
-- Lua on eager tensors, and against the known eigenvalue.

local mg = require "moongrad"
local QUICK = os.getenv("MG_QUICK") == "1"

local function dominant_eigenvalue(A, v, tol, max_iter)
  local lambda = mg.sum(v * mg.matmul(A, v))
  local iters = 0
  while iters < max_iter do
    local w = mg.matmul(A, v)
    v = w / mg.sqrt(mg.sum(w * w))
    local next_lambda = mg.sum(v * mg.matmul(A, v))
    local change = mg.abs(next_lambda - lambda)
    lambda = next_lambda
    iters = iters + 1
    if change < tol then break end
  end
  return lambda, iters
end

-- A = Q diag(d) Q^T with a known spectrum: Q from the (orthonormal) Householder reflection of a vector
local n = QUICK and 16 or 128
mg.random.seed(7)
local u = mg.random.normal({ n, 1 }, 0, 1, mg.float64)
u = u / mg.sqrt(mg.sum(u * u))
local Q = mg.eye(n, mg.float64) - 2 * mg.matmul(u, mg.transpose(u))
local d = mg.linspace(1, 2, n) -- eigenvalues 1 .. 2; the largest is 2
d = mg.cast(d, mg.float64)
local A = mg.matmul(Q * mg.reshape(d, { 1, n }), mg.transpose(Q))
local v0 = mg.ones({ n, 1 }, mg.float64) / math.sqrt(n)

local staged = mg.func(dominant_eigenvalue)
print(mg.autograph.to_code(dominant_eigenvalue))

local tol, max_iter = mg.tensor(1e-10, mg.float64), mg.tensor(10000)
local lambda, iters = staged(A, v0, tol, max_iter)
local ref_lambda, ref_iters = dominant_eigenvalue(A, v0, tol, max_iter:item())   -- unconverted: Lua on eager tensors
print(("staged: lambda = %.8f after %d iterations"):format(lambda:item(), iters:item()))
print(("plain Lua on eager tensors: lambda = %.8f after %d iterations"):format(ref_lambda:item(), ref_iters))
assert(iters:item() == ref_iters, "the same number of iterations")
assert(math.abs(lambda:item() - ref_lambda:item()) < 1e-9)
assert(math.abs(lambda:item() - 2) < 1e-3, "the dominant eigenvalue is 2")

-- a looser tolerance stops earlier: same graph, another value
local l2, i2 = staged(A, v0, mg.tensor(1e-3, mg.float64), max_iter)
print(("tol 1e-3: lambda = %.6f after %d iterations"):format(l2:item(), i2:item()))
assert(i2:item() < iters:item())
assert(staged:trace_count() == 1, "one trace for every tolerance")

local text = staged:concrete(A, v0, tol, max_iter):pretty()
local _, nwhile = text:gsub("= while%(", "")
print(("the graph holds %d while node(s)"):format(nwhile))
assert(nwhile == 1)
print(mg.autograph.explain(dominant_eigenvalue, A, v0, tol, max_iter))
