-- fuzz_diff/gen.lua: the seeded generator of random moongrad programs.
--
-- A program is an AST (plain tables: statements with `tag`, expressions with
-- `tag`, a static type `ty` and a magnitude bound `mag`) that render.lua
-- prints as Lua source in several dialects. The generator is a small type
-- checker run forwards: every expression is generated for an exact target
-- type (kind, dtype, shape), so assignments, branch states, loop variables
-- and `return`s always satisfy the staging rules of doc/autograph.md (a
-- variable assigned under a tensor condition keeps its dtype and shape, is
-- defined before the `if` or loop, and every `return` has one signature).
-- What would differ between plain Lua and tensors *by design* (integer
-- division by zero, `==` being identity on tensors, truthiness of tensors,
-- weak-scalar promotion of computed floats on LuaJIT) is never generated
-- for the modes it does not apply to: the program carries flags (`plain_ok`,
-- `scalar`, `lowprec`, features) that the runner reads to choose modes and
-- tolerances. Magnitudes are bounded (each value has an upper bound `mag`;
-- a loop-carried variable never grows past its bound), so programs do not
-- overflow and finite differences stay meaningful. The RNG is a Park-Miller
-- generator in doubles, so a seed gives the same program on Lua 5.4 and on
-- LuaJIT. Portable Lua.
local M = {}

-- ---- RNG -----------------------------------------------------------------------------

local RNG = {}
RNG.__index = RNG
function M.rng(seed)
  local r = setmetatable({ s = (math.floor(seed) % 2147483646) + 1 }, RNG)
  r:next(); r:next()
  return r
end
function RNG:next() self.s = (self.s * 16807) % 2147483647; return self.s end
function RNG:float() return (self:next() - 1) / 2147483646 end
function RNG:int(a, b) return a + math.floor(self:float() * (b - a + 1)) end
function RNG:chance(p) return self:float() < p end
function RNG:pick(list) return list[self:int(1, #list)] end
-- pick from {{weight, value}, ...}
function RNG:weighted(list)
  local total = 0
  for _, e in ipairs(list) do total = total + e[1] end
  local x = self:float() * total
  for _, e in ipairs(list) do
    x = x - e[1]
    if x < 0 then return e[2] end
  end
  return list[#list][2]
end
-- a float with a fraction, a multiple of 1/8 in [-lim, lim] (exact in float32)
function RNG:frac(lim)
  while true do
    local v = self:int(-lim * 8, lim * 8) / 8
    if v ~= math.floor(v) then return v end
  end
end
-- a float exactly representable in float32, uniform in [lo, hi], with a fraction
function RNG:f32(lo, hi)
  local v = lo + (hi - lo) * self:float()
  v = math.floor(v * 4096 + 0.5) / 4096
  if v == math.floor(v) then v = v + 1 / 4096 end
  return v
end

-- ---- types ---------------------------------------------------------------------------
-- {k="num", int=bool, mt=bool}: a Lua number (mt: may be a tensor when staged, after a
--   tensor-dependent assignment); {k="bool"}: a Lua boolean;
-- {k="t", dt="F"|"f32"|"i64"|"b", shape={...}, mn=bool}: a tensor (dt F is the program's
--   float dtype FT; mn: a Lua number when run eagerly, a tensor when staged);
-- {k="tbl", elem=type, n=count}: a Lua table of tensors.

local function num(int, mt) return { k = "num", int = int, mt = mt or nil } end
local function ten(dt, shape, mn) return { k = "t", dt = dt, shape = shape, mn = mn or nil } end
M.num, M.ten = num, ten

local function shape_eq(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end
M.shape_eq = shape_eq

local function numel(s)
  local n = 1
  for _, d in ipairs(s) do n = n * d end
  return n
end
M.numel = numel

function M.type_eq(a, b)
  if a.k ~= b.k then return false end
  if a.k == "num" then return a.int == b.int end
  if a.k == "t" then return a.dt == b.dt and shape_eq(a.shape, b.shape) end
  return true
end

local function is_float_dt(dt) return dt == "F" or dt == "f32" end
local function is_float(ty) return (ty.k == "num" and not ty.int) or (ty.k == "t" and is_float_dt(ty.dt)) end
M.is_float = is_float

-- broadcast two shapes (nil when they do not broadcast)
local function broadcast(a, b)
  local n = math.max(#a, #b)
  local out = {}
  for i = 1, n do
    local da = a[#a - n + i] or 1
    local db = b[#b - n + i] or 1
    if da == db or db == 1 then out[i] = da
    elseif da == 1 then out[i] = db
    else return nil end
  end
  return out
end
M.broadcast = broadcast

-- shapes that broadcast to s when paired with s
local function donors(s)
  local out = { {} }
  for r = 1, #s do
    -- suffix of length r, each dim either kept or 1
    local function rec(i, acc)
      if i > #s then
        out[#out + 1] = acc
        return
      end
      local a1, a2 = {}, {}
      for j, d in ipairs(acc) do a1[j] = d; a2[j] = d end
      a1[#a1 + 1] = s[i]
      rec(i + 1, a1)
      if s[i] ~= 1 then a2[#a2 + 1] = 1; rec(i + 1, a2) end
    end
    rec(#s - r + 1, {})
  end
  return out
end
M.donors = donors

local rank = { b = 1, i64 = 2, f32 = 3, F = 4 }
local function promote(a, b) return rank[a] >= rank[b] and a or b end

-- ---- context -------------------------------------------------------------------------

local Ctx = {}
Ctx.__index = Ctx

local function new_ctx(rng, opts)
  return setmetatable({
    rng = rng, scalar = opts.scalar, lj = opts.lj,
    scopes = { {} }, rdepth = 0, loops = {}, nid = 0, budget = opts.budget or 14,
    depth = 0, prog = nil, fn = nil,
  }, Ctx)
end

function Ctx:name(prefix)
  self.nid = self.nid + 1
  return prefix .. self.nid
end
function Ctx:push() self.scopes[#self.scopes + 1] = {} end
function Ctx:pop() self.scopes[#self.scopes] = nil end
function Ctx:declare(v)
  v.rdepth = self.rdepth
  v.loopdepth = #self.loops
  local s = self.scopes[#self.scopes]
  s[#s + 1] = v
  return v
end
function Ctx:vars(filter)
  local out = {}
  for _, s in ipairs(self.scopes) do
    for _, v in ipairs(s) do
      if not filter or filter(v) then out[#out + 1] = v end
    end
  end
  return out
end

-- ---- expressions ---------------------------------------------------------------------

local MAXMAG = 1e4
-- statements under a list (pre-order), without a type pass
local each_expr_pre
local function walk_stmts(block, f)
  for _, st in ipairs(block or {}) do
    f(st)
    for _, arm in ipairs(st.arms or {}) do walk_stmts(arm.body, f) end
    walk_stmts(st.els, f)
    walk_stmts(st.body, f)
  end
end

local function node(tag, ty, mag, t)
  t = t or {}
  t.tag, t.ty, t.mag = tag, ty, mag
  return t
end

local function lit_num(rng, int)
  if int then
    local v = rng:int(-3, 5)
    return node("num", num(true), math.abs(v), { v = v })
  end
  local v = rng:frac(2)
  return node("num", num(false), math.abs(v), { v = v, lit = true })
end

-- nested table of f32-exact values for a shape
local function values_for(rng, shape, dt)
  local function rec(i)
    if i > #shape then
      if dt == "i64" then return rng:int(-3, 4) end
      if dt == "b" then return rng:chance(0.5) end
      return rng:f32(-2, 2)
    end
    local t = {}
    for j = 1, shape[i] do t[j] = rec(i + 1) end
    return t
  end
  return rec(1)
end
M.values_for = values_for

local function const_tensor(rng, ty)
  local vals = values_for(rng, ty.shape, ty.dt)
  return node("const", ten(ty.dt, ty.shape), ty.dt == "i64" and 4 or 2, { value = vals })
end

-- a leaf of exactly type ty: a variable, a parameter, a Variable read or a constant
function Ctx:leaf(ty, pure)
  local rng = self.rng
  local cands = {}
  for _, v in ipairs(self:vars()) do
    if v.ty.k == ty.k and M.type_eq(v.ty, ty) and not (pure and (v.ty.mt or v.ty.mn)) then
      if ty.k ~= "t" or not v.ty.mn or self.mnok then cands[#cands + 1] = v end
    end
  end
  if #cands > 0 and rng:chance(0.8) then
    local v = rng:pick(cands)
    if v.kind == "var" then
      return node("vread", v.ty, v.mag, { name = v.name, var = v })
    end
    return node("var", v.ty, v.mag, { name = v.name, v = v })
  end
  if ty.k == "num" then
    if not ty.int and rng:chance(self.fn and self.fn.helper and 0.6 or 0.3) then
      local ks = self:vars(function(v) return v.kind == "K" end)
      if #ks > 0 then return node("var", ks[1].ty, ks[1].mag, { name = ks[1].name, v = ks[1] }) end
    end
    return lit_num(rng, ty.int)
  end
  if ty.k == "bool" then
    local a, b = lit_num(rng, false), lit_num(rng, false)
    return node("cmp", { k = "bool" }, 1, { op = "<", a = a, b = b })
  end
  if ty.k == "t" then
    if ty.dt == "b" then
      local t = ten("F", ty.shape)
      local saved = self.mnok
      self.mnok = false           -- a real tensor: a Lua number would compare to a boolean
      local a = self:leaf(t)
      self.mnok = saved
      return node("cmp", ten("b", ty.shape), 1, { op = rng:pick { "<", ">" }, a = a, b = lit_num(rng, false) })
    end
    return const_tensor(rng, ty)
  end
  error("leaf: no type " .. tostring(ty.k))
end

local UNARY_F = {
  -- name, lua equivalent exists, kink, mag(m) -> bound or nil when not allowed
  { "exp", function(m) return m <= 3 and math.exp(m) or nil end },
  { "tanh", function() return 1 end },
  { "sin", function() return 1 end },
  { "cos", function() return 1 end },
  { "sigmoid", function() return 1 end },
  { "relu", function(m) return m end },
  { "abs", function(m) return m end },
  { "square", function(m) return m * m end },
  { "neg", function(m) return m end },
  { "sqrt1", function(m) return m + 1 end },      -- sqrt(x*x + 0.5)
  { "log1p2", function(m) return 2 * math.log(1 + m) + 1 end },  -- log1p(x*x)
  { "floor", function(m) return m + 1 end },
  { "ceil", function(m) return m + 1 end },
  { "round", function(m) return m + 1 end },
  { "sign", function() return 1 end },
}

-- expression of exactly type ty. pure: must be a plain Lua value (no mt/mn);
-- used for numbers that Lua needs (loop bounds, math.*).
-- mnok: the consumer accepts a Lua number where a () tensor is typed (arithmetic,
-- comparisons, elementwise mg.* calls); otherwise the result must be a real tensor.
function Ctx:expr(ty, d, pure, mnok)
  d = d or 0
  local rng = self.rng
  local saved = self.mnok
  self.mnok = mnok
  local e
  if d >= 3 or rng:chance(0.25 + 0.15 * d) then
    e = self:leaf(ty, pure)
  else
    for _ = 1, 6 do
      local c = self:expr_once(ty, d, pure)
      if c and c.mag <= MAXMAG and (mnok or not c.ty.mn) then e = c; break end
    end
    e = e or self:leaf(ty, pure)
  end
  self.mnok = saved
  return e
end

-- Two operands that are the same expression compare equal in every mode (a tie the
-- margin check would skip, or x - x == 0 feeding a kink): draw b again while it prints
-- like a.
local render_expr
function Ctx:distinct(a, make)
  render_expr = render_expr or require("fuzz_diff.render").expr
  local b = make()
  for _ = 1, 4 do
    local ok, same = pcall(function() return render_expr(a, "t") == render_expr(b, "t") end)
    if not (ok and same) then return b end
    b = make()
  end
  return b
end

-- a () tensor result is a Lua number when run eagerly if no operand is a real tensor
local function mn_of(...)
  for _, x in ipairs { ... } do
    if x.ty.k == "t" and not x.ty.mn then return false end
  end
  return true
end

function Ctx:expr_once(ty, d, pure)
  if ty.k == "num" then return self:num_expr(ty, d, pure) end
  if ty.k == "bool" then return self:lbool_expr(d) end
  if ty.dt == "b" then return self:mask_expr(ty, d) end
  return self:tensor_expr(ty, d)
end

function Ctx:num_expr(ty, d, pure)
  local rng = self.rng
  local choice = rng:weighted {
    { 4, "bin" }, { ty.int and (self.lj and 0 or 1) or 0, "idiv" },
    { (not ty.int and not pure) and 0 or 1, "math" }, { ty.int and 0.5 or 0, "len" },
  }
  if choice == "bin" then
    local ops = ty.int and { "+", "-", "*" } or { "+", "-", "*", "/" }
    local op = rng:pick(ops)
    local ta, tb = ty, ty
    if not ty.int and op ~= "/" and rng:chance(0.3) then
      if rng:chance(0.5) then ta = num(true) else tb = num(true) end
    end
    local a = self:expr(ta, d + 1, pure)
    if op == "/" then
      local b = self:expr(num(false), d + 1, pure)
      -- a / (b*b + 1)
      local den = node("bin", num(false), b.mag * b.mag + 1, { op = "+",
        a = node("bin", num(false), b.mag * b.mag, { op = "*", a = b, b = b }),
        b = node("num", num(true), 1, { v = 1 }) })
      return node("bin", num(false, a.ty.mt or b.ty.mt), a.mag, { op = "/", a = a, b = den })
    end
    local b = self:distinct(a, function() return self:expr(tb, d + 1, pure) end)
    local mag = op == "*" and a.mag * b.mag or a.mag + b.mag
    return node("bin", num(ty.int, a.ty.mt or b.ty.mt), mag, { op = op, a = a, b = b })
  elseif choice == "idiv" then
    local a = self:expr(num(true), d + 1, pure)
    local k = rng:int(1, 4)
    return node("bin", num(true, a.ty.mt), a.mag, { op = rng:pick { "//", "%" }, a = a,
      b = node("num", num(true), k, { v = k }) })
  elseif choice == "math" then
    if ty.int then
      local a = self:expr(num(false), d + 1, true)
      return node("mathf", num(true), a.mag + 1, { fn = "floor", a = a })
    end
    local a = self:expr(num(false), d + 1, true)
    local fn = rng:pick { "sin", "cos", "abs" }
    return node("mathf", num(false), fn == "abs" and a.mag or 1, { fn = fn, a = a })
  else
    local tbls = self:vars(function(v) return v.ty.k == "tbl" end)
    if #tbls == 0 then return nil end
    local t = rng:pick(tbls)
    return node("len", num(true), t.ty.n, { name = t.name })
  end
end

-- a Lua boolean (from comparing Lua numbers), used in conditions
function Ctx:lbool_expr(d)
  local rng = self.rng
  if d < 2 and rng:chance(0.25) then
    local op = rng:pick { "and", "or", "not" }
    if op == "not" then return node("not", { k = "bool" }, 1, { a = self:lbool_expr(d + 1) }) end
    return node(op, { k = "bool" }, 1, { a = self:lbool_expr(d + 1), b = self:lbool_expr(d + 1) })
  end
  local int = rng:chance(0.4)
  local a = self:expr(num(int), d + 1, true)
  local b = self:distinct(a, function() return self:expr(num(int), d + 1, true) end)
  local ops = { "<", "<=", ">", ">=" }
  if int then ops[#ops + 1] = "=="; ops[#ops + 1] = "~=" end
  return node("cmp", { k = "bool" }, 1, { op = rng:pick(ops), a = a, b = b })
end

-- a bool tensor of shape ty.shape
function Ctx:mask_expr(ty, d)
  local rng = self.rng
  local choice = rng:weighted {
    { 5, "cmp" }, { d < 2 and 2 or 0, "logic" }, { #ty.shape == 0 and 1.5 or 0, "allany" },
  }
  if choice == "cmp" then
    local dt = rng:weighted { { 5, "F" }, { 2, "i64" } }
    local sa, sb = ty.shape, ty.shape
    if rng:chance(0.4) then
      local ds = donors(ty.shape)
      if rng:chance(0.5) then sa = rng:pick(ds) else sb = rng:pick(ds) end
    end
    local a = self:expr(ten(dt, sa), d + 1, nil, true)
    local b
    if rng:chance(0.35) then b = lit_num(rng, dt == "i64")
    else b = self:distinct(a, function() return self:expr(ten(dt, sb), d + 1, nil, true) end) end
    local out = broadcast(a.ty.shape, b.ty.k == "t" and b.ty.shape or {})
    if not out or not shape_eq(out, ty.shape) or (a.ty.mn and (b.ty.k ~= "t" or b.ty.mn)) then
      b = self:expr(ten(dt, ty.shape), d + 1)   -- a real tensor: two Lua numbers compare to a boolean
    end
    local ops = { "<", "<=", ">", ">=" }
    if dt == "i64" then ops[#ops + 1] = "=="; ops[#ops + 1] = "~=" end
    local op = rng:pick(ops)
    if rng:chance(0.5) then a, b = b, a end
    return node("cmp", ten("b", ty.shape), 1, { op = op, a = a, b = b })
  elseif choice == "logic" then
    local op = rng:pick { "and", "or", "not", "and", "or" }
    if op == "not" then return node("not", ten("b", ty.shape), 1, { a = self:mask_expr(ty, d + 1) }) end
    return node(op, ten("b", ty.shape), 1, { a = self:mask_expr(ty, d + 1), b = self:mask_expr(ty, d + 1) })
  else
    local s = rng:pick { { 3 }, { 2, 3 }, { 2, 1 } }
    if self.scalar then s = {} end
    local m = self:mask_expr(ten("b", s), d + 1)
    return node("call", ten("b", {}), 1, { fn = rng:pick { "all", "any" }, args = { m } })
  end
end

-- shapes (source shape, opts) that a reduction turns into s
local function reduction_sources(s)
  local out = {}
  if #s == 0 then
    out[#out + 1] = { { 2, 3 }, nil }
    out[#out + 1] = { { 3 }, nil }
    out[#out + 1] = { { 3 }, { axis = 1 } }
    out[#out + 1] = { { 2, 1 }, nil }
  elseif #s == 1 then
    out[#out + 1] = { { s[1], 3 }, { axis = 2 } }
    out[#out + 1] = { { 2, s[1] }, { axis = 1 } }
    out[#out + 1] = { { s[1], 3 }, { axis = -1 } }
    if s[1] == 1 then out[#out + 1] = { { 3 }, { axis = 1, keepdims = true } } end
  elseif #s == 2 then
    if s[2] == 1 then out[#out + 1] = { { s[1], 3 }, { axis = 2, keepdims = true } } end
    if s[1] == 1 then out[#out + 1] = { { 2, s[2] }, { axis = 1, keepdims = true } } end
    if s[1] == 1 and s[2] == 1 then out[#out + 1] = { { 2, 3 }, { keepdims = true } } end
  end
  return out
end

-- movement ops producing shape s from another shape
local function movement_sources(s)
  local out = {}
  local n = numel(s)
  if #s == 2 then out[#out + 1] = { "transpose", { s[2], s[1] } } end
  for _, src in ipairs { { 2, 3 }, { 3, 2 }, { 6 }, { 1, 3 }, { 3 }, { 3, 1 }, { 2, 2 }, { 4 }, { 2 }, { 1 }, {} } do
    if numel(src) == n and not shape_eq(src, s) then out[#out + 1] = { "reshape", src } end
  end
  -- slicing: s from a bigger tensor
  if #s == 1 and s[1] <= 2 then out[#out + 1] = { "slice", { 3 } } end
  if #s == 2 and s[1] == 1 then out[#out + 1] = { "slice", { 2, s[2] } } end
  if #s == 2 and s[2] == 2 then out[#out + 1] = { "slice", { s[1], 3 } } end
  -- indexing: s from (k, s...)
  if #s <= 1 then
    local src = { 2 }
    for _, d in ipairs(s) do src[#src + 1] = d end
    out[#out + 1] = { "index", src }
  end
  if #s == 2 and s[1] == 1 then out[#out + 1] = { "concat", { 1, s[2] } } end
  if #s == 2 and s[1] == 2 then out[#out + 1] = { "concat", { 1, s[2] } } end
  if #s == 1 and s[1] > 1 then out[#out + 1] = { "unsqueeze_rev", {} } end
  return out
end

local function matmul_sources(s)
  local out = {}
  if #s == 0 then out[#out + 1] = { { 3 }, { 3 } } end
  if #s == 1 then out[#out + 1] = { { s[1], 3 }, { 3 } } ; out[#out + 1] = { { 3 }, { 3, s[1] } } end
  if #s == 2 then out[#out + 1] = { { s[1], 3 }, { 3, s[2] } }; out[#out + 1] = { { s[1], 2 }, { 2, s[2] } } end
  return out
end

-- a numeric tensor of exactly ty (dt F, f32 or i64; shape)
function Ctx:tensor_expr(ty, d)
  local rng = self.rng
  local s, dt = ty.shape, ty.dt
  local float = is_float_dt(dt)
  local sc = self.scalar
  local choice = rng:weighted {
    { 5, "bin" }, { float and 4 or 0, "unary" }, { (float and not sc) and 1.5 or 0, "reduce" },
    { (float and not sc) and 1 or 0, "matmul" }, { sc and 0 or 1.5, "move" },
    { 1.5, "ifexp" }, { sc and 0.3 or 1, "where" }, { 1, "cast" },
    { float and 1 or 0, "minmax" }, { (dt == "i64" and not self.lj) and 0.7 or 0, "idiv" },
    { float and 0.7 or 0, "pow" }, { 1, "helper" }, { (sc or not float) and 0 or 0.4, "prod" },
  }
  local function one(tag, mag, t, ...)
    local n = node(tag, ten(dt, s), mag, t)
    if #s == 0 and mn_of(...) then n.ty.mn = true end
    return n
  end
  if choice == "bin" then
    local op = rng:pick { "+", "-", "*", "+", "*", "/" }
    if op == "/" and dt ~= "F" then op = "*" end
    if rng:chance(0.3) then
      -- a Lua number on one side (a weak scalar)
      local lit, da
      if op == "/" then lit, da = node("num", num(true), 2, { v = rng:pick { 2, 4, -2 } }), dt
      elseif dt == "i64" then lit, da = lit_num(rng, true), "i64"
      elseif dt == "f32" then lit, da = lit_num(rng, false), "i64"   -- int64 tensor with a Lua float: float32
      else
        lit, da = lit_num(rng, rng:chance(0.4)), "F"
        -- helpers read the upvalue K (a guard must cover helpers: issue 14 item 2)
        if self.fn and self.fn.helper and rng:chance(0.5) then
          local k = self:vars(function(v) return v.kind == "K" end)[1]
          if k then lit = node("var", k.ty, k.mag, { name = k.name }) end
        end
      end
      local a = self:expr(ten(da, s), d + 1, nil, true)
      local mag = (op == "*") and a.mag * lit.mag or (op == "/" and a.mag or a.mag + lit.mag)
      if op == "/" or rng:chance(0.5) then return one("bin", mag, { op = op, a = a, b = lit }, a) end
      return one("bin", mag, { op = op, a = lit, b = a }, a)
    end
    -- operand dtypes: dt with dt, or int64 with F (promotes to F)
    local da, db = dt, dt
    if dt == "F" and rng:chance(0.3) then
      if rng:chance(0.5) then da = "i64" else db = "i64" end
    end
    local sa, sb = s, s
    local r = rng:float()
    if r < 0.3 then sa = rng:pick(donors(s))
    elseif r < 0.6 then sb = rng:pick(donors(s))
    elseif r < 0.7 and #s == 2 and s[1] > 1 and s[2] > 1 then sa = { s[1], 1 }; sb = { 1, s[2] } end
    local a = self:expr(ten(da, sa), d + 1, nil, true)
    if op == "/" then
      -- a / (b*b + 1): a denominator away from zero
      local bb = self:expr(ten(db, sb), d + 1, nil, true)
      local sq = node("bin", ten(db, sb, bb.ty.mn), bb.mag * bb.mag, { op = "*", a = bb, b = bb })
      local den = node("bin", ten(db, sb, bb.ty.mn), bb.mag * bb.mag + 1, { op = "+", a = sq, b = node("num", num(true), 1, { v = 1 }) })
      return one("bin", a.mag, { op = "/", a = a, b = den }, a, bb)
    end
    local b = self:distinct(a, function() return self:expr(ten(db, sb), d + 1, nil, true) end)
    local mag = op == "*" and a.mag * b.mag or a.mag + b.mag
    return one("bin", mag, { op = op, a = a, b = b }, a, b)
  elseif choice == "unary" then
    local u = rng:pick(UNARY_F)
    -- a real tensor: mg.square(0) of a Lua integer is int64, whatever the staged type
    local a = self:expr(ty, d + 1, nil, u[1] == "neg")
    local m = u[2](a.mag)
    if not m then return nil end
    if u[1] == "neg" then return one("unary", m, { fn = "neg", a = a }, a) end
    return node("unary", ten(dt, s), m, { fn = u[1], a = a })
  elseif choice == "reduce" then
    local srcs = reduction_sources(s)
    if #srcs == 0 then return nil end
    local src = rng:pick(srcs)
    local fn = rng:pick { "sum", "mean", "max", "min", "sum" }
    local a = self:expr(ten(dt, src[1]), d + 1)
    local mag = fn == "sum" and a.mag * numel(src[1]) or a.mag
    return node("reduce", ten(dt, s), mag, { fn = fn, a = a, opts = src[2] })
  elseif choice == "prod" then
    local srcs = reduction_sources(s)
    if #srcs == 0 then return nil end
    local src = rng:pick(srcs)
    local a = self:expr(ten(dt, src[1]), d + 1, nil, true)
    -- 0.5 + sigmoid(a): in (0.5, 1.5), away from zero
    local pos = node("bin", ten(dt, src[1]), 1.5, { op = "+", a = node("num", num(false), 0.5, { v = 0.5 }),
      b = node("unary", ten(dt, src[1]), 1, { fn = "sigmoid", a = a }) })
    return node("reduce", ten(dt, s), 1.5 ^ numel(src[1]), { fn = "prod", a = pos, opts = src[2] })
  elseif choice == "matmul" then
    local src = rng:pick(matmul_sources(s))
    local a = self:expr(ten(dt, src[1]), d + 1)
    local b
    if #src[2] == 2 and rng:chance(0.5) then
      local bt = self:expr(ten(dt, { src[2][2], src[2][1] }), d + 1)
      b = node("move", ten(dt, src[2]), bt.mag, { fn = "transpose", a = bt })
    else
      b = self:expr(ten(dt, src[2]), d + 1)
    end
    return node("matmul", ten(dt, s), a.mag * b.mag * 3, { a = a, b = b })
  elseif choice == "move" then
    local srcs = movement_sources(s)
    if #srcs == 0 then return nil end
    local m = rng:pick(srcs)
    local fn, src = m[1], m[2]
    if fn == "unsqueeze_rev" then
      local a = self:expr(ten(dt, { 1, s[1] }), d + 1)
      return node("move", ten(dt, s), a.mag, { fn = "squeeze", a = a })
    end
    if fn == "concat" then
      if s[1] == 1 then
        -- a row of a (2, n) tensor
        local a = self:expr(ten(dt, { 2, s[2] }), d + 1)
        local r = rng:int(1, 2)
        return node("move", ten(dt, s), a.mag, { fn = "slice", a = a, range = { r, r } })
      end
      local a = self:expr(ten(dt, { 1, s[2] }), d + 1)
      local b = self:expr(ten(dt, { s[1] - 1, s[2] }), d + 1)
      return node("move", ten(dt, s), math.max(a.mag, b.mag), { fn = "concat", a = a, b = b })
    end
    local a = self:expr(ten(dt, src), d + 1)
    local n = { fn = fn, a = a, shape = s }
    if fn == "slice" then
      if #s == 1 then
        local first = rng:int(1, 3 - s[1] + 1)
        n.range = { first, first + s[1] - 1 }
      elseif s[1] == 1 and src[1] == 2 and src[2] == s[2] then
        local r = rng:int(1, 2)
        n.range = { r, r }
      else
        n.range2 = { 2, 3 }
      end
    elseif fn == "index" then
      n.index = rng:pick { 1, 2, -1 }
    end
    return node("move", ten(dt, s), a.mag, n)
  elseif choice == "ifexp" then
    local c
    local saved = self.no_effects
    self.no_effects = true
    if rng:chance(0.4) and numel(s) > 1 then
      c = self:mask_expr(ten("b", s), d + 1)
    elseif rng:chance(0.3) then
      c = self:lbool_expr(d + 1)
    else
      c = self:mask_expr(ten("b", {}), d + 1)
    end
    self.no_effects = saved
    local a = self:expr(ty, d + 1, nil, true)
    local b = self:expr(ty, d + 1, nil, true)
    return one("ifexp", math.max(a.mag, b.mag), { c = c, a = a, b = b }, a, b)
  elseif choice == "where" then
    local saved = self.no_effects
    self.no_effects = true
    local c = self:mask_expr(ten("b", rng:chance(0.5) and s or rng:pick(donors(s))), d + 1)
    self.no_effects = saved
    local a = self:expr(ty, d + 1)   -- a real tensor decides the dtype (two Lua numbers would)
    local b
    if rng:chance(0.3) then b = lit_num(rng, dt == "i64") else b = self:expr(ten(dt, rng:pick(donors(s))), d + 1, nil, true) end
    if dt == "f32" and b.tag == "num" then b = self:expr(ty, d + 1, nil, true) end
    local bs = b.ty.k == "t" and b.ty.shape or {}
    local out = broadcast(c.ty.shape, a.ty.shape)
    out = out and broadcast(out, bs)
    if not out or not shape_eq(out, s) then return nil end
    return node("call", ten(dt, s), math.max(a.mag, b.mag), { fn = "where", args = { c, a, b } })
  elseif choice == "cast" then
    local from
    if dt == "i64" then from = rng:pick { "F", "b", "F" }
    elseif dt == "F" then from = rng:pick { "i64", "b", self.lj and "i64" or "f32" }
    else from = rng:pick { "F", "i64" } end
    local a = self:expr(ten(from, s), d + 1, nil, true)
    return node("cast", ten(dt, s), a.mag + 1, { a = a, to = dt })
  elseif choice == "minmax" then
    local a = self:expr(ty, d + 1)   -- a real tensor decides the dtype
    local b = self:distinct(a, function() return self:expr(ten(dt, rng:chance(0.6) and s or rng:pick(donors(s))), d + 1, nil, true) end)
    return node("call", ten(dt, s), math.max(a.mag, b.mag), { fn = rng:pick { "maximum", "minimum" }, args = { a, b } })
  elseif choice == "idiv" then
    local a = self:expr(ty, d + 1, nil, true)
    local k = rng:int(1, 3)
    return one("bin", a.mag, { op = rng:pick { "//", "%" }, a = a, b = node("num", num(true), k, { v = k }) }, a)
  elseif choice == "pow" then
    local a = self:expr(ty, d + 1, nil, true)
    local p = rng:pick { 2, 3 }
    return one("bin", a.mag ^ p, { op = "^", a = a, b = node("num", num(true), p, { v = p }) }, a)
  elseif choice == "helper" then
    local hs = {}
    for _, h in ipairs(self.prog.helpers) do
      -- a condition may be evaluated more often when staged than in Lua (finding N3): no
      -- helper that assigns a Variable there
      if h.done and M.type_eq(h.ret, ty) and h ~= self.fn and not (h.assigns and self.no_effects) then
        hs[#hs + 1] = h
      end
    end
    if #hs == 0 then return nil end
    local h = rng:pick(hs)
    local args = {}
    for i, p in ipairs(h.params) do args[i] = self:expr(p.ty, d + 1) end
    return node("hcall", ten(dt, s), h.mag, { name = h.name, args = args })
  end
end

-- Whether a condition would be a Lua boolean when run unconverted on eager tensors:
-- only <, <=, >, >= on one-element operands (tensors' __lt/__le), and/or/not of those.
function Ctx:plain_cond(c)
  if c.ty.k == "bool" then return true end
  if c.tag == "cmp" then
    if c.op == "==" or c.op == "~=" then return false end
    for _, x in ipairs { c.a, c.b } do
      if x.ty.k == "t" and numel(x.ty.shape) ~= 1 then return false end
    end
    return true
  end
  if c.tag == "and" or c.tag == "or" then return self:plain_cond(c.a) and self:plain_cond(c.b) end
  if c.tag == "not" then return self:plain_cond(c.a) end
  return false
end

-- whether an expression involves a tensor (or a maybe-tensor number) anywhere
local function tensory(e)
  if type(e) ~= "table" then return false end
  if e.ty and (e.ty.k == "t" or e.ty.mt) then return true end
  for k, v in pairs(e) do
    if k ~= "ty" and k ~= "v" and k ~= "var" and k ~= "helper" and type(v) == "table" and tensory(v) then return true end
  end
  return false
end
M.tensory = tensory

-- a condition: a bool tensor with one element, or a Lua boolean
function Ctx:cond(d)
  local saved = self.no_effects
  self.no_effects = true
  local c = self:cond1(d)
  self.no_effects = saved
  return c
end

function Ctx:cond1(d)
  local rng = self.rng
  local c
  local r = rng:float()
  if r < 0.25 then
    c = self:lbool_expr(d or 0)
    if rng:chance(0.3) then
      -- a Lua comparison of a maybe-tensor number
      local mts = self:vars(function(v) return v.ty.k == "num" and v.ty.mt end)
      if #mts > 0 then
        local v = rng:pick(mts)
        c = node("cmp", { k = "bool" }, 1, { op = rng:pick { "<", ">", "<=" }, a = node("var", v.ty, v.mag, { name = v.name, v = v }),
          b = lit_num(rng, v.ty.int) })
      end
    end
  else
    local shape = rng:weighted { { 8, {} }, { 1, { 1 } } }
    if self.scalar then shape = {} end
    c = self:mask_expr(ten("b", shape), d or 0)
  end
  return c
end

-- ---- statements ----------------------------------------------------------------------

local FLOAT_SHAPES = { {}, { 1 }, { 3 }, { 2, 3 }, { 1, 3 }, { 2, 1 } }

function Ctx:random_type()
  local rng = self.rng
  if self.scalar then
    return rng:weighted { { 6, ten("F", {}) }, { 2, num(false) }, { 2, num(true) }, { 1.5, ten("i64", {}) }, { 0.5, ten("b", {}) } }
  end
  local s = rng:pick(FLOAT_SHAPES)
  return rng:weighted { { 7, ten("F", s) }, { 1.5, num(false) }, { 1.5, num(true) }, { 1.5, ten("i64", s) },
    { 0.7, ten("b", s) }, { self.lj and 0 or 0.4, ten("f32", s) } }
end

-- the statement kinds and weights
function Ctx:stmt_weights()
  local d = self.depth
  local inloop = #self.loops > 0
  return {
    { 5, "local" }, { 4, "assign" }, { d < 3 and 2.5 or 0, "if" }, { d < 2 and 1.2 or 0, "while" },
    { d < 2 and 0.8 or 0, "repeat" }, { d < 2 and 1 or 0, "fornum" }, { d < 2 and 0.6 or 0, "forrange" },
    { d < 2 and 0.6 or 0, "foripairs" }, { (d < 2 and not self.scalar) and 0.6 or 0, "forrows" },
    { inloop and 1.2 or 0, "break" }, { 0.6, "return" }, { #self.prog.vars > 0 and 1.5 or 0, "vassign" },
    { (self.prog.opts.tablewrite and inloop) and 0.6 or 0, "tblappend" },
    { self.prog.opts.setitem and 1.5 or 0, "setitem" },
  }
end

-- may we assign to v here (a value of type ty)?
function Ctx:assignable(v, ty)
  if v.kind ~= "local" or v.fixed then return false end
  if v.ty.k == "t" and v.ty.mn then
    -- an accumulator: only its own type
    return ty.k == "t" and M.type_eq(v.ty, ty)
  end
  if not M.type_eq(v.ty, ty) then return false end
  return true
end

-- Generate an assignment value for v, respecting magnitude bounds inside loops.
function Ctx:assign_value(v)
  local bound = (v.loopdepth < #self.loops) and math.max(v.mag, 8) or MAXMAG
  for _ = 1, 5 do
    local e = self:expr(v.ty, 0, nil, v.ty.mn)
    if e.mag <= bound then return e end
  end
  return self:leaf(v.ty)
end

function Ctx:mark_assigned(v, e)
  if v.ty.k == "num" and (self.rdepth > v.rdepth or e.ty.mt) then
    -- a Lua number assigned under a tensor condition is a tensor when staged
    v.ty = num(v.ty.int, true)
  end
  v.mag = math.max(v.mag, e.mag)
end

-- After an `if` under a tensor condition, sometimes overwrite a variable its branches
-- assigned, so it is not live after the `if`: its value must still not leak from one traced
-- branch into the other (issue 14 item 3).
function Ctx:kill_after(st)
  if not self.rng:chance(0.35) then return nil end
  local names = {}
  walk_stmts({ st }, function(x) if x.tag == "assign" then names[#names + 1] = x end end)
  if #names == 0 then return nil end
  local a = self.rng:pick(names)
  local v = a.v
  if not v or v.kind ~= "local" or v.fixed then return nil end
  local visible = false
  for _, x in ipairs(self:vars()) do if x == v then visible = true end end
  if not visible then return nil end
  local e
  if v.ty.k == "num" then e = lit_num(self.rng, v.ty.int)
  elseif v.ty.k == "t" and v.ty.dt ~= "b" then e = const_tensor(self.rng, v.ty)
  else return nil end
  return { tag = "assign", name = v.name, e = e, v = v }
end

function Ctx:block(n)
  local out = {}
  self.depth = self.depth + 1
  self:push()
  for i = 1, n do
    if self.budget <= 0 then break end
    local s = self:stmt(i == n)
    if s then
      out[#out + 1] = s
      if s.tag == "break" or s.tag == "return" then break end
      local kill = s.tag == "if" and s.tensor and self:kill_after(s)
      if kill then out[#out + 1] = kill end
    end
  end
  self:pop()
  self.depth = self.depth - 1
  return out
end

-- the loop-carried accumulators: Lua numbers that start a tensor loop and become tensors
function Ctx:enter_region(tensor)
  if tensor then self.rdepth = self.rdepth + 1 end
end
function Ctx:leave_region(tensor)
  if tensor then self.rdepth = self.rdepth - 1 end
end

-- a loop: push loop info (lua_iter: a loop over a Lua iterator: no tensor break/return)
function Ctx:loop_body(info, n)
  -- A number that the body may turn into a tensor (under a tensor condition) is one on the
  -- next iteration: treat every outer number local as maybe-a-tensor in and after the body.
  for _, v in ipairs(self:vars(function(x) return x.kind == "local" and not x.fixed and x.ty.k == "num" end)) do
    v.ty = num(v.ty.int, true)
  end
  self.loops[#self.loops + 1] = info
  self:enter_region(info.tensor)
  local body = self:block(n)
  self:leave_region(info.tensor)
  self.loops[#self.loops] = nil
  return body
end

-- a loop bound: a Lua integer, or the int64 () parameter
function Ctx:bound(lo, hi)
  local ns = self:vars(function(v) return v.kind == "param" and v.ty.k == "t" and v.ty.dt == "i64" end)
  if #ns > 0 and self.rng:chance(0.45) then
    local v = ns[1]
    return node("var", v.ty, v.mag, { name = v.name, v = v }), true
  end
  local k = self.rng:int(lo, hi)
  return node("num", num(true), k, { v = k }), false
end

function Ctx:stmt(last)
  local rng = self.rng
  self.budget = self.budget - 1
  local kind = rng:weighted(self:stmt_weights())
  if kind == "local" then
    local ty = self:random_type()
    local e
    if ty.k == "t" and #ty.shape == 0 and ty.dt ~= "b" and rng:chance(0.25) and not self.lj then
      -- an accumulator: a Lua number that a later tensor loop or branch turns into a tensor
      local init = ty.dt == "i64" and node("num", num(true), 0, { v = 0 })
        or node("num", num(false), 0.5, { v = rng:pick { 0.5, -0.5, 0.25 } })
      if ty.dt == "F" then init = node("num", num(true), 0, { v = 0 }) end
      local v = self:declare({ kind = "local", name = self:name("s"), ty = ten(ty.dt, {}, true), mag = init.mag })
      return { tag = "local", name = v.name, e = init, v = v }
    end
    e = self:expr(ty, 0)
    if self.prog.opts.setitem and ty.k == "t" and ty.dt == "F" and #ty.shape >= 1 and not e.ty.mn
      and rng:chance(0.4) then
      -- a tensor of its own (a clone), written in place later by `z[i] = ...` (issue 14 item 1)
      local v = self:declare({ kind = "local", name = self:name("z"), ty = e.ty, mag = math.max(e.mag, 2),
        fixed = true, owned = true })
      return { tag = "local", name = v.name, e = node("clone", e.ty, e.mag, { a = e }), v = v }
    end
    local v = self:declare({ kind = "local", name = self:name("v"), ty = e.ty, mag = e.mag })
    return { tag = "local", name = v.name, e = e, v = v }
  elseif kind == "assign" then
    local cands = self:vars(function(v) return v.kind == "local" and not v.fixed and v.ty.k ~= "tbl" end)
    if #cands == 0 then return nil end
    local v = rng:pick(cands)
    local e = self:assign_value(v)
    if not self:assignable(v, e.ty) then return nil end
    self:mark_assigned(v, e)
    return { tag = "assign", name = v.name, e = e, v = v }
  elseif kind == "if" then
    local arms = {}
    local narms = rng:weighted { { 5, 1 }, { 2, 2 }, { 1, 3 } }
    local tensor = false
    local conds = {}
    for i = 1, narms do
      conds[i] = self:cond(0)
      if tensory(conds[i]) then tensor = true end
    end
    -- elseif under a tensor condition: every later arm is a nested region
    self:enter_region(tensor)
    for i = 1, narms do
      arms[i] = { c = conds[i], body = self:block(rng:int(1, 3)) }
    end
    local els
    if rng:chance(0.6) then els = self:block(rng:int(1, 3)) end
    self:leave_region(tensor)
    return { tag = "if", arms = arms, els = els, tensor = tensor }
  elseif kind == "while" or kind == "repeat" then
    local bound, tb = self:bound(1, 4)
    local c = self:cond(0)
    local tensor = tb or tensory(c)
    local ctr = self:name("i")
    -- the counter may be a tensor even under Lua bounds: after a tensor-dependent break the
    -- rest of the loop is staged as a while node (doc/autograph.md, Loops)
    local cv = self:declare({ kind = "local", name = ctr, ty = num(true, true), mag = 6, fixed = true })
    local body = self:loop_body({ tensor = tensor }, rng:int(1, 4))
    return { tag = kind, ctr = ctr, bound = bound, c = c, body = body }
  elseif kind == "fornum" then
    local tensor = false
    local from, to, step
    local r = rng:float()
    if r < 0.6 then
      local b, tb = self:bound(1, 4)
      from, to, tensor = node("num", num(true), 1, { v = 1 }), b, tb
    elseif r < 0.8 then
      local a = rng:int(1, 3)
      local b = a + rng:int(1, 4)
      from, to, step = node("num", num(true), a, { v = a }), node("num", num(true), b, { v = b }), rng:pick { 1, 2 }
    else
      local a = rng:int(2, 4)
      from, to, step = node("num", num(true), a, { v = a }), node("num", num(true), 1, { v = 1 }), -1
    end
    self:push()
    -- a tensor-dependent break stages the rest of even a Lua-bounded loop: k may be a tensor
    local iv = self:declare({ kind = "local", name = self:name("k"), ty = num(true, true), mag = 4, fixed = true })
    local body = self:loop_body({ tensor = tensor }, rng:int(1, 4))
    self:pop()
    return { tag = "fornum", var = iv.name, from = from, to = to, step = step, body = body }
  elseif kind == "forrange" then
    local b = self:bound(1, 4)
    self:push()
    local iv = self:declare({ kind = "local", name = self:name("k"), ty = num(true, true), mag = 4, fixed = true })
    local body = self:loop_body({ tensor = true }, rng:int(1, 3))
    self:pop()
    return { tag = "forrange", var = iv.name, n = b, body = body }
  elseif kind == "foripairs" then
    local ty = self.scalar and ten("F", {}) or ten("F", rng:pick(FLOAT_SHAPES))
    local n = rng:int(1, 3)
    local items = {}
    for i = 1, n do items[i] = self:expr(ty, 1) end
    -- (items are real tensors: a Lua number in the table would be one too)
    local mag = 0
    for _, it in ipairs(items) do mag = math.max(mag, it.mag) end
    local tname
    local pre
    if rng:chance(0.4) then
      tname = self:name("tb")
      pre = self:declare({ kind = "tbl", name = tname, ty = { k = "tbl", elem = ty, n = n }, mag = mag, fixed = true })
    end
    self:push()
    local iv = self:declare({ kind = "local", name = self:name("k"), ty = num(true), mag = n, fixed = true })
    local vv = self:declare({ kind = "local", name = self:name("e"), ty = ty, mag = mag, fixed = true })
    local body = self:loop_body({ tensor = false, lua_iter = true }, rng:int(1, 3))
    self:pop()
    return { tag = "foripairs", ivar = iv.name, vvar = vv.name, items = items, tname = tname, pre = pre, body = body }
  elseif kind == "forrows" then
    local s = rng:pick { { 2, 3 }, { 3 }, { 2, 1 }, { 1, 3 } }
    local src = self:expr(ten("F", s), 1)
    local rs = {}
    for i = 2, #s do rs[#rs + 1] = s[i] end
    self:push()
    local iv = self:declare({ kind = "local", name = self:name("k"), ty = num(true, true), mag = 3, fixed = true })
    local vv = self:declare({ kind = "local", name = self:name("r"), ty = ten("F", rs), mag = src.mag, fixed = true })
    local body = self:loop_body({ tensor = true }, rng:int(1, 3))
    self:pop()
    return { tag = "forrows", ivar = iv.name, vvar = vv.name, src = src, body = body }
  elseif kind == "break" then
    local loop = self.loops[#self.loops]
    -- a break is the last statement of an if inside the loop
    local c = self:cond(0)
    if loop.lua_iter and (tensory(c) or self.rdepth > 0) then return nil end
    if tensory(c) or self.rdepth > 0 then
      self.region_exit = true
      -- a tensor break stages the whole loop: a table write anywhere in its body, before the
      -- break too, is in a staged body (LuaJIT seed 8102836)
      if self.acc then self.prog.tablewrite_in_region = true end
    end
    self:enter_region(tensory(c))
    self:leave_region(tensory(c))
    return { tag = "if", arms = { { c = c, body = { { tag = "break" } } } } }
  elseif kind == "return" then
    for _, l in ipairs(self.loops) do if l.lua_iter then return nil end end
    local c = self:cond(0)
    local tensor = tensory(c)
    -- the code after a staged return or break runs inside a cond the rewrite makes (seed 9001812)
    if tensor or self.rdepth > 0 then self.region_exit = true end
    self:enter_region(tensor)
    local vals = {}
    for i, ty in ipairs(self.fn.ret) do vals[i] = self:expr(ty, 1, nil, ty.k == "num") end
    self:leave_region(tensor)
    return { tag = "if", arms = { { c = c, body = { { tag = "return", vals = vals } } } } }
  elseif kind == "vassign" then
    local v = rng:pick(self.prog.vars)
    if v.ty.dt == "i64" then
      return { tag = "vassign", name = v.name, method = "assign_add", e = node("num", num(true), 1, { v = 1 }), var = v }
    end
    local method = rng:pick { "assign", "assign_add", "assign_sub" }
    local e = self:expr(ten("F", v.ty.shape), 1)
    for _ = 1, 4 do
      if e.mag <= 4 then break end
      e = self:expr(ten("F", v.ty.shape), 1)
    end
    if e.mag > 4 then e = self:leaf(ten("F", v.ty.shape)) end
    v.assigned = true
    if self.rdepth > 0 then self.prog.assign_in_region = true end
    if #self.loops > 0 and method ~= "assign" then e = node("bin", e.ty, e.mag * 0.25, { op = "*", a = e, b = node("num", num(false), 0.25, { v = 0.25 }) }) end
    return { tag = "vassign", name = v.name, method = method, e = e, var = v }
  elseif kind == "setitem" then
    local owned = self:vars(function(v) return v.owned end)
    if #owned == 0 then return nil end
    local z = rng:pick(owned)
    local rows = z.ty.shape[1]
    local idx = rng:pick { 1, rows, -1 }
    local rest = {}
    for i = 2, #z.ty.shape do rest[#rest + 1] = z.ty.shape[i] end
    local e
    if rng:chance(0.3) then e = lit_num(rng, false)
    else
      e = self:expr(ten("F", rest), 1)
      for _ = 1, 3 do
        if e.mag <= z.mag then break end
        e = self:expr(ten("F", rest), 1)
      end
      if e.mag > z.mag then e = const_tensor(rng, ten("F", rest)) end
    end
    return { tag = "setitem", name = z.name, index = idx, e = e }
  elseif kind == "tblappend" then
    -- acc[#acc + 1] = e in a loop: a Lua table written by a (maybe staged) loop body
    local acc = self.acc
    if not acc then return nil end
    local e = self:expr(acc.elem, 1)
    if self.rdepth > 0 or self.region_exit then self.prog.tablewrite_in_region = true end
    return { tag = "tblappend", name = acc.name, e = e }
  end
end

-- ---- programs ------------------------------------------------------------------------

local function gen_fn(ctx, fn, nstmts)
  ctx.fn = fn
  ctx.region_exit = false
  ctx.scopes = { ctx.scopes[1], {} }
  for _, p in ipairs(fn.params) do ctx:declare(p) end
  ctx.budget = nstmts
  local body = ctx:block(nstmts)
  local vals = {}
  for i, ty in ipairs(fn.ret) do vals[i] = ctx:expr(ty, 0, nil, ty.k == "num") end
  if fn.acc then
    -- the last value: what the loops appended to the Lua table acc
    vals[#vals] = node("accsum", fn.ret[#fn.ret], 50, { elem = fn.acc.elem })
  end
  body[#body + 1] = { tag = "return", vals = vals }
  fn.body = body
  fn.mag = 0
  for _, v in ipairs(vals) do fn.mag = math.max(fn.mag, v.mag) end
  fn.mag = math.max(fn.mag, 8)
  fn.done = true
  return fn
end

-- opts: {scalar=, lj=, tablewrite=}
function M.generate(seed, opts)
  opts = opts or {}
  local rng = M.rng(seed)
  local scalar = opts.scalar
  if scalar == nil then scalar = rng:chance(0.35) end
  local ctx = new_ctx(rng, { scalar = scalar, lj = opts.lj })
  local prog = {
    seed = seed, scalar = scalar, lj = opts.lj,
    ft = rng:chance(0.5) and "float32" or "float64",
    params = {}, vars = {}, helpers = {},
    opts = { tablewrite = opts.tablewrite ~= false and rng:chance(0.15),
      setitem = opts.setitem ~= false and not scalar and rng:chance(0.2) },
  }
  ctx.prog = prog
  -- the upvalue K (guards: changed between the two calls)
  local K = ctx:declare({ kind = "K", name = "K", ty = num(false), mag = 2, fixed = true })
  prog.K = { rng:f32(-1.5, 1.5), rng:chance(0.5) and rng:f32(-1.5, 1.5) or nil }
  K.value = prog.K[1]
  -- Variables
  local nv = rng:weighted { { 4, 0 }, { 3, 1 }, { 1, 2 } }
  for i = 1, nv do
    local shape = scalar and {} or rng:pick(FLOAT_SHAPES)
    local v = ctx:declare({ kind = "var", name = "V" .. i, ty = ten("F", shape), mag = 6, fixed = true })
    v.init = values_for(rng, shape, "F")
    prog.vars[#prog.vars + 1] = v
  end
  if rng:chance(0.15) then
    local v = ctx:declare({ kind = "var", name = "C1", ty = ten("i64", {}), mag = 20, fixed = true, counter = true })
    v.init = 0
    prog.vars[#prog.vars + 1] = v
  end
  -- parameters of main
  local params = {}
  local np = rng:int(1, 3)
  for i = 1, np do
    local shape = scalar and {} or rng:pick(FLOAT_SHAPES)
    params[#params + 1] = { kind = "param", name = "x" .. i, ty = ten("F", shape), mag = 2, fixed = true, source = true }
  end
  if rng:chance(0.4) then params[#params + 1] = { kind = "param", name = "n", ty = ten("i64", {}), mag = 4, fixed = true, int = true } end
  if rng:chance(0.3) then params[#params + 1] = { kind = "param", name = "a", ty = num(false), mag = 2, fixed = true, luanum = true } end
  -- helpers
  local nh = rng:weighted { { 5, 0 }, { 3, 1 }, { 1, 2 } }
  for i = 1, nh do
    local hp = {}
    for j = 1, rng:int(1, 2) do
      local ty = scalar and ten("F", {}) or ten("F", rng:pick(FLOAT_SHAPES))
      hp[j] = { kind = "param", name = "p" .. j, ty = ty, mag = 8, fixed = false }
      hp[j].kind = "local"
    end
    local ret = scalar and ten("F", {}) or ten("F", rng:pick(FLOAT_SHAPES))
    local h = { name = "h" .. i, params = hp, ret = { ret }, helper = true }
    h.ret1 = ret
    prog.helpers[#prog.helpers + 1] = h
    local saved = ctx.loops
    ctx.loops = {}
    gen_fn(ctx, h, rng:int(1, 3))
    ctx.loops = saved
    h.ret = ret
    walk_stmts(h.body, function(st) if st.tag == "vassign" then h.assigns = true end end)
    M.each_expr_in(h.body, function(x)
      if x.tag == "hcall" then
        for _, g in ipairs(prog.helpers) do if g.name == x.name and g.assigns then h.assigns = true end end
      end
    end)
  end
  -- a Lua table that main's loops append to (issue 14 item 4)
  if prog.opts.tablewrite then
    local elem = scalar and ten("F", {}) or ten("F", rng:pick(FLOAT_SHAPES))
    ctx.acc = { name = "acc", elem = elem }
    prog.acc = ctx.acc
  end
  -- main
  local ret = {}
  local nr = rng:weighted { { 3, 1 }, { 3, 2 }, { 1, 3 } }
  for i = 1, nr do
    if i == 1 then ret[i] = scalar and ten("F", {}) or ten("F", rng:pick(FLOAT_SHAPES))
    else ret[i] = ctx:random_type() end
    if ret[i].k == "t" then ret[i].mn = nil end
  end
  if prog.acc then ret[#ret + 1] = ten("F", prog.acc.elem.shape) end
  local main = { name = "main", params = params, ret = ret, acc = prog.acc }
  ctx.rdepth = 0
  ctx.loops = {}
  gen_fn(ctx, main, rng:int(3, 10))
  prog.main = main
  -- inputs: two sets (the second call reuses the first call's trace)
  prog.inputs = {}
  for set = 1, 2 do
    local vals = {}
    for i, p in ipairs(params) do
      if p.int then vals[i] = rng:int(0, 4)
      elseif p.luanum then vals[i] = set == 1 and rng:f32(-1.5, 1.5) or prog.inputs[1][i]
      else vals[i] = values_for(rng, p.ty.shape, "F") end
    end
    prog.inputs[set] = vals
  end
  -- a Variable assigned between the calls (outside the staged function)
  local floats = {}
  for i, v in ipairs(prog.vars) do if not v.counter then floats[#floats + 1] = i end end
  if #floats > 0 and rng:chance(0.3) then
    local i = rng:pick(floats)
    prog.vbetween = { name = prog.vars[i].name, value = values_for(rng, prog.vars[i].ty.shape, "F") }
  end
  prog.lowprec = prog.ft == "float32" or M.uses_f32(prog)
  if opts.avoid then M.avoid(prog, opts.avoid) end
  return prog
end

-- Steers a long run around known defects so they do not hide others (main.lua --avoid):
-- F1: a Variable is never the value of a branch, a conditional expression, a return or a
-- loop variable as it is (it becomes V + 0, a plain tensor); I4: no Lua table appends;
-- I1: no in-place item writes.
function M.avoid(prog, set)
  if set.F1 then
    local function plain(e)
      if type(e) == "table" and e.tag == "vread" then
        return node("bin", e.ty, e.mag, { op = "+", a = e, b = node("num", num(true), 0, { v = 0 }) })
      end
      return e
    end
    local function fix_expr(e)
      each_expr_pre(e, function(x)
        if x.tag == "ifexp" then x.a, x.b = plain(x.a), plain(x.b) end
        if x.tag == "hcall" then for i, a in ipairs(x.args) do x.args[i] = plain(a) end end
      end)
    end
    for _, fn in ipairs(M.functions(prog)) do
      walk_stmts(fn.body, function(st)
        if st.e then st.e = plain(st.e) end
        for i, v in ipairs(st.vals or {}) do st.vals[i] = plain(v) end
        for i, v in ipairs(st.items or {}) do st.items[i] = plain(v) end
      end)
      M.walk_block(fn.body, nil, fix_expr)
    end
  end
  if set.I4 and prog.acc then
    for _, fn in ipairs(M.functions(prog)) do
      walk_stmts(fn.body, function(st)
        local keep = {}
        for _, arm in ipairs(st.arms or {}) do
          local b = {}
          for _, x in ipairs(arm.body) do if x.tag ~= "tblappend" then b[#b + 1] = x end end
          arm.body = b
        end
        for _, key in ipairs { "els", "body" } do
          if st[key] then
            local b = {}
            for _, x in ipairs(st[key]) do if x.tag ~= "tblappend" then b[#b + 1] = x end end
            st[key] = b
          end
        end
        return keep
      end)
      local b = {}
      for _, x in ipairs(fn.body) do if x.tag ~= "tblappend" then b[#b + 1] = x end end
      fn.body = b
    end
  end
  if set.I1 then
    for _, fn in ipairs(M.functions(prog)) do
      local function strip(block)
        local b = {}
        for _, x in ipairs(block or {}) do if x.tag ~= "setitem" then b[#b + 1] = x end end
        return b
      end
      fn.body = strip(fn.body)
      walk_stmts(fn.body, function(st)
        for _, arm in ipairs(st.arms or {}) do arm.body = strip(arm.body) end
        if st.els then st.els = strip(st.els) end
        if st.body then st.body = strip(st.body) end
      end)
    end
  end
end

-- whether a program computes anything in float32 regardless of FT
function M.uses_f32(prog)
  local found = false
  local function walk(x)
    if found or type(x) ~= "table" then return end
    if x.ty and ((x.ty.k == "t" and x.ty.dt == "f32") or (x.ty.k == "num" and not x.ty.int and x.ty.mt)
      or (x.ty.k == "t" and x.ty.mn)) then found = true; return end
    for k, v in pairs(x) do
      if k ~= "v" and k ~= "var" and k ~= "helper" and type(v) == "table" then walk(v) end
    end
  end
  walk(prog.main)
  for _, h in ipairs(prog.helpers) do walk(h) end
  return found
end

-- ---- analyses (also run on shrunk programs) ---------------------------------------------

local EXPR_KEYS = { "a", "b", "c" }
function each_expr_pre(x, f)
  if type(x) ~= "table" then return end
  if x.tag and x.ty then f(x) end
  for _, k in ipairs(EXPR_KEYS) do if type(x[k]) == "table" then each_expr_pre(x[k], f) end end
  if x.args then for _, a in ipairs(x.args) do each_expr_pre(a, f) end end
end
-- calls f(e) on every expression node under x (pre-order)
local function each_expr(x, f)
  if type(x) ~= "table" then return end
  if x.tag and x.ty then f(x) end
  for _, k in ipairs(EXPR_KEYS) do if type(x[k]) == "table" then each_expr(x[k], f) end end
  if x.args then for _, a in ipairs(x.args) do each_expr(a, f) end end
end
M.each_expr = each_expr
-- f on every expression node of a block's statements
function M.each_expr_in(block, f)
  M.walk_block(block, nil, function(e) each_expr(e, f) end)
end

-- calls fs(stmt) for every statement and fe(expr, role) for its top-level expressions
local function walk_block(block, fs, fe)
  for _, st in ipairs(block or {}) do
    if fs then fs(st) end
    local t = st.tag
    if t == "local" or t == "assign" or t == "vassign" or t == "tblappend" or t == "setitem" then fe(st.e, "value")
    elseif t == "if" then
      for _, arm in ipairs(st.arms) do fe(arm.c, "cond"); walk_block(arm.body, fs, fe) end
      walk_block(st.els, fs, fe)
    elseif t == "while" or t == "repeat" then
      fe(st.bound, "bound"); fe(st.c, "cond"); walk_block(st.body, fs, fe)
    elseif t == "fornum" then fe(st.from, "bound"); fe(st.to, "bound"); walk_block(st.body, fs, fe)
    elseif t == "forrange" then fe(st.n, "bound"); walk_block(st.body, fs, fe)
    elseif t == "foripairs" then
      for _, it in ipairs(st.items) do fe(it, "value") end
      walk_block(st.body, fs, fe)
    elseif t == "forrows" then fe(st.src, "value"); walk_block(st.body, fs, fe)
    elseif t == "return" then for _, v in ipairs(st.vals) do fe(v, "value") end end
  end
end
M.walk_block = walk_block

local function functions(prog)
  local out = {}
  for _, h in ipairs(prog.helpers) do out[#out + 1] = h end
  out[#out + 1] = prog.main
  return out
end
M.functions = functions

-- Whether the unconverted function, run on eager tensors, means what the converted one
-- means: every comparison or logical operator on tensors is part of a condition made of
-- <, <=, >, >= on one-element operands (Lua booleans through __lt/__le), and every loop
-- bound is a Lua number or a one-element tensor compared by `<`.
function M.plain_eligible(prog)
  local ok = true
  local ctx = setmetatable({}, Ctx)
  local function value(e, incond)
    if not ok or type(e) ~= "table" or not e.tag then return end
    local logic = e.tag == "cmp" or e.tag == "and" or e.tag == "or" or e.tag == "not"
    if logic and e.ty.k == "t" and not incond then ok = false; return end
    if e.tag == "ifexp" then
      if not ctx:plain_cond(e.c) then ok = false; return end
      value(e.c, true); value(e.a); value(e.b)
      return
    end
    local sub = incond and (e.tag == "and" or e.tag == "or" or e.tag == "not")
    for _, k in ipairs(EXPR_KEYS) do value(e[k], sub) end
    if e.args then for _, a in ipairs(e.args) do value(a, false) end end
  end
  for _, fn in ipairs(functions(prog)) do
    walk_block(fn.body, function(st)
      if st.tag == "forrows" then ok = false end
      if st.tag == "fornum" and (st.from.ty.k == "t" or st.to.ty.k == "t") then ok = false end
      if st.tag == "forrange" and st.n.ty.k == "t" then ok = false end
    end, function(e, role)
      if role == "cond" then
        if not ctx:plain_cond(e) then ok = false end
        value(e, true)
      else
        value(e, false)
      end
    end)
  end
  return ok
end

-- names of the Variables some statement assigns
function M.assigned_vars(prog)
  local out = {}
  for _, fn in ipairs(functions(prog)) do
    walk_block(fn.body, function(st) if st.tag == "vassign" then out[st.name] = true end end, function() end)
  end
  return out
end

-- the gradient sources: float parameters of main, and float Variables never assigned
function M.sources(prog)
  local out = {}
  for i, p in ipairs(prog.main.params) do
    if p.source then out[#out + 1] = { kind = "param", name = p.name, index = i, shape = p.ty.shape } end
  end
  local assigned = M.assigned_vars(prog)
  for i, v in ipairs(prog.vars) do
    if not v.counter and not assigned[v.name] then
      out[#out + 1] = { kind = "var", name = v.name, index = i, shape = v.ty.shape }
    end
  end
  return out
end

-- Whether every name a statement assigns or an expression reads is declared where it is
-- used (the shrinker deletes declarations; an assignment would then make a global).
function M.well_scoped(prog)
  local ok = true
  local scopes = { {} }
  local function declare(n) scopes[#scopes][n] = true end
  local function known(n)
    for i = #scopes, 1, -1 do if scopes[i][n] then return true end end
    return false
  end
  declare("K")
  for _, v in ipairs(prog.vars) do declare(v.name) end
  local function expr(e)
    each_expr(e, function(x)
      if (x.tag == "var" or x.tag == "vread" or x.tag == "len") and not known(x.name) then ok = false end
      if x.tag == "hcall" and not known(x.name) then ok = false end
    end)
  end
  local block
  local function stmt(st)
    local t = st.tag
    if t == "local" then expr(st.e); declare(st.name)
    elseif t == "assign" then expr(st.e); if not known(st.name) then ok = false end
    elseif t == "vassign" then expr(st.e); if not known(st.name) then ok = false end
    elseif t == "tblappend" or t == "setitem" then expr(st.e); if not known(st.name) then ok = false end
    elseif t == "if" then
      for _, arm in ipairs(st.arms) do expr(arm.c); block(arm.body) end
      if st.els then block(st.els) end
    elseif t == "while" or t == "repeat" then
      expr(st.bound); declare(st.ctr); expr(st.c); block(st.body)
    elseif t == "fornum" then expr(st.from); expr(st.to); block(st.body, { st.var })
    elseif t == "forrange" then expr(st.n); block(st.body, { st.var })
    elseif t == "foripairs" then
      for _, it in ipairs(st.items) do expr(it) end
      if st.tname then declare(st.tname) end
      block(st.body, { st.ivar, st.vvar })
    elseif t == "forrows" then expr(st.src); block(st.body, { st.ivar, st.vvar })
    elseif t == "return" then for _, v in ipairs(st.vals) do expr(v) end end
  end
  function block(b, names)
    scopes[#scopes + 1] = {}
    for _, n in ipairs(names or {}) do declare(n) end
    for _, st in ipairs(b or {}) do stmt(st) end
    scopes[#scopes] = nil
  end
  for _, fn in ipairs(functions(prog)) do
    local names = {}
    for i, p in ipairs(fn.params) do names[i] = p.name end
    if fn.acc then names[#names + 1] = "acc" end
    block(fn.body, names)
    declare(fn.name)
  end
  return ok
end

-- number of statements (for reports)
function M.size(prog)
  local n = 0
  for _, fn in ipairs(functions(prog)) do walk_block(fn.body, function() n = n + 1 end, function() end) end
  return n
end

-- a deep copy (programs are trees plus shared type tables; the copy shares nothing)
function M.copy(x, seen)
  if type(x) ~= "table" then return x end
  seen = seen or {}
  if seen[x] then return seen[x] end
  local c = {}
  seen[x] = c
  for k, v in pairs(x) do c[M.copy(k, seen)] = M.copy(v, seen) end
  return c
end

return M
