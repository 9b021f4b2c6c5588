-- tests/oracle/gen.lua — the moongrad half of the op oracle (issue 14).
--
--   lua5.4 tests/oracle/gen.lua OUTDIR
--
-- Runs every case of tests/oracle/cases.lua through moongrad and writes what
-- it got for tests/oracle/check.py to compare with an independent
-- implementation (JAX and NumPy): OUTDIR/cases.safetensors holds each case's
-- inputs (their logical values; a non-contiguous view is written as the values
-- it shows), outputs, upstream gradient and input gradients, and
-- OUTDIR/manifest.json says what each case is (op, attributes in moongrad's
-- own conventions: 1-based axes and indices, the names of its tensors, the
-- error moongrad raised if it raised one). The gradient of a case is
-- tape:gradient(y, inputs, {output_gradients = gy}) with a random gy, taken
-- with respect to every float tensor input of a differentiable op. Each case
-- (but random ops and cases that must raise) runs twice: eagerly, and staged
-- (the op alone in an mg.func, called under the tape, so its gradient is the
-- staged backward), both written for the same reference.
--
-- The op table itself (core.ops()) is the list of what must be covered: an
-- op with no case is written to the manifest as missing, and check.py counts
-- it as a failure, so an op added to core/ops.def without an oracle case fails
-- `make test` (as tests/spec/gradcheck_spec.lua does for gradient checks).
local mg = require("moongrad")
local core = mg.core
local json = require("moongrad.nn.json")

local outdir = assert(arg[1], "usage: gen.lua OUTDIR")
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local cases = dofile(here .. "/cases.lua")

local unpack = table.unpack or unpack

-- ---- deterministic values (Park-Miller; independent of moongrad's RNG) --------
local state = 12345
local function rnd()
  state = (state * 16807) % 2147483647
  return state / 2147483647
end

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

local int_dtypes = { int32 = true, int64 = true, uint8 = true }

-- One value of kind `kind` for dtype dt; i is the element's flat index.
local function value(kind, dt, i)
  if dt == "bool" then return rnd() < 0.5 end
  local isint = int_dtypes[dt]
  if kind == "u" then
    if dt == "uint8" then return math.floor(rnd() * 11) end
    if isint then return math.floor(rnd() * 11) - 5 end
    return rnd() * 4 - 2
  elseif kind == "pos" then          -- away from 0, positive
    if isint then return 1 + math.floor(rnd() * 5) end
    return 0.5 + rnd() * 1.5
  elseif kind == "nz" then           -- nonzero, either sign
    if dt == "uint8" then return 1 + math.floor(rnd() * 6) end
    local v = isint and (1 + math.floor(rnd() * 5)) or (0.5 + rnd() * 1.5)
    return rnd() < 0.5 and -v or v
  elseif kind == "unit" then         -- inside (-1, 1): asin-like domains, log1p
    return rnd() * 1.8 - 0.9
  elseif kind == "offgrid" then      -- away from integers and from 0 (kinks of floor, abs, relu)
    return math.floor(rnd() * 7) - 3 + 0.1 + rnd() * 0.3
  elseif kind == "distinct" then     -- no ties (max, maximum, pooling); golden-ratio sequence
    local v = (i * 0.6180339887498949 + rnd() * 1e-3) % 1
    if isint then return math.floor(v * 1000) - 500 end
    return v * 4 - 2
  elseif kind == "small" then        -- tiny integers, both signs (pow, mod)
    if dt == "uint8" then return math.floor(rnd() * 4) end
    return math.floor(rnd() * 7) - 3
  elseif kind == "gt1" then          -- above 1 (acosh)
    if isint then return 2 + math.floor(rnd() * 4) end
    return 1.1 + rnd() * 2
  elseif kind == "tiny" then         -- small values, both signs
    return rnd() * 0.2 - 0.1
  elseif kind == "prob" then         -- probabilities (labels)
    return rnd()
  end
  error("gen.lua: unknown value kind " .. tostring(kind))
end

-- A tensor of `shape`, dtype dt, from a flat list of Lua values.
local function from_list(list, shape, dt)
  if numel(shape) == 0 then return core.full(shape, 0, dt) end
  if dt == "int32" or dt == "int64" or dt == "uint8" then   -- creation refuses fractions: truncate here
    for i, v in ipairs(list) do
      if type(v) == "number" then
        v = v >= 0 and math.floor(v) or math.ceil(v)
        if dt == "uint8" then v = v % 256 end   -- (and out-of-range numbers: wrap here, as C's cast would)
        list[i] = v
      end
    end
  end
  local t = core.tensor(list, dt)
  return core.reshape(t, shape)
end

local function gen_values(shape, dt, kind)
  local list = {}
  for i = 1, numel(shape) do list[i] = value(kind, dt, i) end
  return from_list(list, shape, dt)
end

-- An input tensor from its spec: {shape=, dtype=, kind=, layout=, values=}.
-- layout "T": a transposed view (the last two axes of a contiguous base);
-- "step": every other element of a base twice as long in the last axis;
-- "bcast": a broadcast view (stride 0) of a base with size 1 in axis 1;
-- nil: contiguous.
local function make_input(spec)
  local shape, dt = spec.shape, spec.dtype or "float32"
  local function base_values(bshape)
    if spec.values then
      assert(not spec.layout, "literal values take no layout")
      return from_list(spec.values, bshape, dt)
    end
    return gen_values(bshape, dt, spec.kind or "u")
  end
  local layout, n = spec.layout, #shape
  if not layout then return base_values(shape) end
  if layout == "T" then
    assert(n >= 2, "layout T needs 2 or more axes")
    local b = {}
    for d = 1, n do b[d] = shape[d] end
    b[n - 1], b[n] = shape[n], shape[n - 1]
    return core.transpose(base_values(b))
  elseif layout == "step" then
    assert(n >= 1, "layout step needs 1 or more axes")
    local b, begin, stop, step = {}, {}, {}, {}
    for d = 1, n do b[d], begin[d], stop[d], step[d] = shape[d], 0, shape[d], 1 end
    b[n], begin[n], stop[n], step[n] = 2 * shape[n] + 1, 1, 2 * shape[n] + 1, 2
    return core.slice(base_values(b), begin, stop, step)
  elseif layout == "bcast" then
    assert(n >= 1, "layout bcast needs 1 or more axes")
    local b = {}
    for d = 1, n do b[d] = shape[d] end
    b[1] = 1
    return core.expand(base_values(b), shape)
  end
  error("gen.lua: unknown layout " .. tostring(layout))
end

-- ---- running the cases ---------------------------------------------------------
local ops, opinfo = core.ops(), {}
for _, op in ipairs(ops) do opinfo[op.name] = op end

local tensors, manifest = {}, { cases = {}, missing = {} }
local math_type = math.type or function(x) return x == math.floor(x) and "integer" or "float" end

local function is_float(t) return core.is_tensor(t) and (t.dtype == "float32" or t.dtype == "float64") end

local function describe_input(spec, x)
  if type(spec) == "number" then
    return { scalar = spec, scalar_type = math_type(spec) }
  end
  return { dtype = x.dtype, shape = x.shape, layout = spec.layout }
end

local function errmsg(e) return (tostring(e):gsub("^[^:]*:%d+: ", "")) end

local function put(name, t)
  tensors[name] = core.contiguous(t)
  return name
end

-- Calls op with the inputs and the attributes (by name, in one table).
local function call(name, xs, attrs)
  local info = opinfo[name]
  local args = {}
  if info and info.variadic then
    args[1] = xs
  else
    for i, x in ipairs(xs) do args[i] = x end
  end
  if attrs and next(attrs) ~= nil then args[#args + 1] = attrs end
  return core[name](unpack(args, 1, #args))
end

-- Runs y = fcall(xs) under a tape that watches the inputs `watch`, and its gradient for
-- the output gradient gy (random when nil): {y=, gy=, grads=} or {error=} / {grad_error=}.
local function evaluate(fcall, xs, watch, gy)
  local tape = #watch > 0 and mg.GradientTape() or nil
  for _, k in ipairs(watch) do tape:watch(xs[k]) end
  local ok, y = pcall(fcall, xs)
  if tape then tape:stop() end
  if not ok then return { error = errmsg(y) } end
  local r = { y = y }
  if tape and is_float(y) then
    r.gy = gy or gen_values(y.shape, y.dtype, "u")
    local sources = {}
    for i, k in ipairs(watch) do sources[i] = xs[k] end
    local gok, grads = pcall(tape.gradient, tape, y, sources,
      { output_gradients = r.gy, unconnected_gradients = "zero" })
    if gok then r.grads = grads else r.grad_error = errmsg(grads) end
  end
  return r
end

-- Writes an evaluation's tensors (names suffixed by tag) into entry.
local function record(entry, id, tag, watch, r)
  entry.outputs = { put(string.format("c%d.o1%s", id, tag), r.y) }
  entry.grad_error = r.grad_error
  if r.gy and tag == "" then entry.gy = put(string.format("c%d.gy", id), r.gy) end
  entry.grads = {}
  for i, k in ipairs(r.grads and watch or {}) do
    entry.grads[i] = { input = k, name = put(string.format("c%d.g%d%s", id, k, tag), r.grads[i]) }
  end
end

local function run_case(id, c)
  local info = opinfo[c.op]
  local entry = { id = id, op = c.op, label = c.label, attrs = c.attrs or {}, check = c.check,
                  expect_error = c.expect_error, tol = c.tol, inputs = {}, outputs = {}, grads = {} }
  local xs = {}
  for k, spec in ipairs(c.ins or {}) do
    if type(spec) == "number" then xs[k] = spec else xs[k] = make_input(spec) end
    entry.inputs[k] = describe_input(spec, xs[k])
    if core.is_tensor(xs[k]) then entry.inputs[k].name = put(string.format("c%d.i%d", id, k), xs[k]) end
  end
  if c.run then          -- a case with its own procedure (random ops, optimizer steps, stdlib)
    local ok, res = pcall(c.run, xs)
    if not ok then
      entry.error = errmsg(res)
    else
      for k, t in ipairs(res) do entry.outputs[k] = put(string.format("c%d.o%d", id, k), t) end
    end
    return entry
  end
  local differentiable = info and not (info.nograd or info.create or info.random)
  local watch = {}
  if differentiable and c.grad ~= false then
    for k, x in ipairs(xs) do if is_float(x) then watch[#watch + 1] = k end end
  end
  local r = evaluate(function(args) return call(c.op, args, c.attrs) end, xs, watch)
  if r.error then
    entry.error = r.error
    return entry
  end
  record(entry, id, "", watch, r)
  -- The same op staged (mg.func) under a tape: the graph executor's kernels and the staged
  -- backward, against the same reference. Random ops draw anew per call; cases that must
  -- raise are eager-only.
  if not (info and info.random) and not c.expect_error then
    local staged = mg.func(function(...) return call(c.op, { ... }, c.attrs) end)
    local s = evaluate(function(args) return staged(unpack(args, 1, #args)) end, xs, watch, r.gy)
    entry.staged = {}
    if s.error then entry.staged.error = s.error else record(entry.staged, id, "s", watch, s) end
  end
  return entry
end

local covered, seen = {}, {}
local t0 = os.clock()
for id, c in ipairs(cases.list) do
  covered[c.op] = true
  local entry = run_case(id, c)
  entry.label = entry.label or cases.autolabel(c, entry)
  -- "op: label" names a case (in check.py's output and its expected-failure list): unique
  local key = c.op .. ": " .. entry.label
  seen[key] = (seen[key] or 0) + 1
  if seen[key] > 1 then entry.label = entry.label .. " #" .. seen[key] end
  manifest.cases[id] = entry
end
for _, op in ipairs(ops) do
  if not covered[op.name] then
    local why = cases.exempt[op.name]
    if why then manifest.exempt = manifest.exempt or {}; manifest.exempt[op.name] = why
    else manifest.missing[#manifest.missing + 1] = op.name end
  end
end
manifest.nops = #ops
manifest.lua_seconds = os.clock() - t0

mg.save(outdir .. "/cases.safetensors", tensors)
local f = assert(io.open(outdir .. "/manifest.json", "w"))
f:write(json.encode(manifest))
f:close()
print(string.format("gen.lua: %d cases over %d ops written to %s (%.1f s)", #cases.list, #ops, outdir,
  os.clock() - t0))
