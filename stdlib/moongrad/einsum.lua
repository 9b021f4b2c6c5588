-- moongrad.einsum: mg.einsum (NumPy's einsum: any number of operands, repeated indices,
-- summed indices, `...` broadcasting, implicit or explicit output) and mg.tensordot.
--
-- Design: an einsum is lowered to ops that already have kernels and gradients, so it is
-- differentiable (any order), staged by mg.func and as fast as the matmul it becomes:
--   1. each operand's repeated labels become a diagonal (the two axes moved last, merged, and
--      sliced with a step of n + 1: a strided view, no copy);
--   2. labels that occur in one operand only and not in the output are summed away at once;
--   3. the operands are contracted two at a time in the order of least multiply-adds (every
--      order tried for up to 6 operands, else greedily the cheapest pair), each pair as one
--      batched matmul: labels of both operands that are still needed are batch axes (kept
--      apart, so `...` axes of size 1 broadcast in matmul), labels of both that are not are
--      merged into the inner dimension, the others into the rows and columns. Each operand is
--      laid out as (batch, rows, inner) or (batch, inner, rows) + a transposed view, whichever
--      its axes already are, so an operand in the right order is read where it lies (matmul
--      takes strided views): "bhqd,bhkd->bhqk" is one BLIS call per batch, no copy;
--   4. what remains is summed over labels not in the output and permuted into its order.
-- Letters a-z, A-Z are labels; `...` stands for the leading axes an operand has beyond its
-- letters (right-aligned across operands, broadcasting as NumPy). The implicit output is `...`
-- then the letters that occur once, in byte order (NumPy's rule: upper case first).
-- Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")

local M = {}
local raise = options.raise
local unpack = table.unpack or unpack

local function shape_str(s)
  local p = {}
  for i = 1, #s do p[i] = tostring(s[i]) end
  return "(" .. table.concat(p, ",") .. ")"
end
M.shape_str = shape_str

local function unknown(v) return core.is_unknown_size(v) end
local COST_UNKNOWN = 64   -- what an unknown size counts as when orders are compared

-- The size of a group of axes: one axis passes its size (maybe unknown), several known ones
-- their product, several with an unknown one -1 (reshape's one inferred size) — nil when the
-- caller has used -1 already (then the sizes cannot be merged while tracing).
local function group_size(sizes, used_infer)
  if #sizes == 1 then return sizes[1], used_infer end
  local p = 1
  for _, s in ipairs(sizes) do
    if unknown(s) then
      if used_infer then return nil, used_infer end
      return -1, true
    end
    p = p * s
  end
  return p, used_infer
end

local function reshape_groups(fname, x, groups)
  local shape, used = {}, false
  for i, g in ipairs(groups) do
    local s
    s, used = group_size(g, used)
    if s == nil then
      raise(fname .. ": cannot merge several axes of unknown size while tracing (give the staged function's "
        .. "input_signature known sizes for the contracted axes)")
    end
    shape[i] = s
  end
  return core.reshape(x, shape)
end

local function index_of(list, v)
  for i, w in ipairs(list) do if w == v then return i end end
  return nil
end

local function is_identity(perm)
  for i, p in ipairs(perm) do if p ~= i then return false end end
  return true
end

-- An operand: { t = tensor, labels = {label...} } with labels[i] naming axis i.

-- Sums the axes of op whose labels are not in keep (a set).
local function sum_unkept(op, keep)
  local axes, labels = {}, {}
  for i, l in ipairs(op.labels) do
    if keep[l] then labels[#labels + 1] = l else axes[#axes + 1] = i end
  end
  if #axes == 0 then return op end
  return { t = core.sum(op.t, axes), labels = labels }
end

-- Replaces each label repeated within op by the diagonal over its axes.
local function take_diagonals(fname, op)
  while true do
    local p, q
    for i = 1, #op.labels do
      for j = i + 1, #op.labels do
        if op.labels[i] == op.labels[j] then p, q = i, j; break end
      end
      if p then break end
    end
    if not p then return op end
    local shape = op.t.shape
    local n = shape[p]
    if unknown(n) or unknown(shape[q]) then
      raise(fname .. ": a repeated index over an axis of unknown size while tracing")
    end
    if shape[q] ~= n then
      raise(("%s: index '%s' is repeated in one operand over axes of sizes %d and %d (operand shape %s)"):format(
        fname, tostring(op.labels[p]), n, shape[q], shape_str(shape)))
    end
    local perm, labels, groups = {}, {}, {}
    for i = 1, #shape do
      if i ~= p and i ~= q then
        perm[#perm + 1] = i; labels[#labels + 1] = op.labels[i]; groups[#groups + 1] = { shape[i] }
      end
    end
    perm[#perm + 1] = p; perm[#perm + 1] = q
    groups[#groups + 1] = { n * n }
    local t = is_identity(perm) and op.t or core.permute(op.t, perm)
    t = reshape_groups(fname, t, groups)
    local begins, ends, steps = {}, {}, {}
    for i = 1, #groups do begins[i] = 0; ends[i] = 2 ^ 53; steps[i] = 1 end
    ends[#groups] = n * n; steps[#groups] = n + 1
    labels[#labels + 1] = op.labels[p]
    op = { t = core.slice(t, begins, ends, steps), labels = labels }
  end
end

-- Contracts two operands into one whose labels are those of both that are in keep.
local function contract_pair(fname, a, b, keep)
  a, b = sum_unkept(a, setmetatable({}, { __index = function(_, l) return keep[l] or index_of(b.labels, l) ~= nil end })),
         sum_unkept(b, setmetatable({}, { __index = function(_, l) return keep[l] or index_of(a.labels, l) ~= nil end }))
  local batch, con, am, bn = {}, {}, {}, {}
  for _, l in ipairs(a.labels) do
    if index_of(b.labels, l) then
      if keep[l] then batch[#batch + 1] = l else con[#con + 1] = l end
    else
      am[#am + 1] = l
    end
  end
  for _, l in ipairs(b.labels) do
    if not index_of(a.labels, l) then bn[#bn + 1] = l end
  end
  -- one operand as (batch, rows, inner) or, when its axes already lie that way, (batch, inner,
  -- rows) and a transposed view; returns the (batch..., rows, inner) tensor
  local function lay(op, rows)
    local sh = op.t.shape
    local function perm_of(first, second)
      local perm, groups = {}, {}
      for _, l in ipairs(batch) do
        local i = index_of(op.labels, l); perm[#perm + 1] = i; groups[#groups + 1] = { sh[i] }
      end
      for _, part in ipairs({ first, second }) do
        local g = {}
        for _, l in ipairs(part) do
          local i = index_of(op.labels, l); perm[#perm + 1] = i; g[#g + 1] = sh[i]
        end
        groups[#groups + 1] = g
      end
      return perm, groups
    end
    local perm, groups = perm_of(rows, con)
    local transposed = false
    if not is_identity(perm) then
      local perm2, groups2 = perm_of(con, rows)
      if is_identity(perm2) then perm, groups, transposed = perm2, groups2, true end
    end
    local t = is_identity(perm) and op.t or core.permute(op.t, perm)
    t = reshape_groups(fname, t, groups)
    if transposed then t = core.transpose(t, -2, -1) end
    return t
  end
  local ta = lay(a, am)                         -- (batch..., M, K)
  local tb = core.transpose(lay(b, bn), -2, -1) -- (batch..., N, K) laid out, then (batch..., K, N)
  local y = core.matmul(ta, tb)
  local ys, shape, labels = y.shape, {}, {}
  for i, l in ipairs(batch) do shape[i] = ys[i]; labels[i] = l end
  for _, part in ipairs({ { am, a }, { bn, b } }) do
    for _, l in ipairs(part[1]) do
      shape[#shape + 1] = part[2].t.shape[index_of(part[2].labels, l)]
      labels[#labels + 1] = l
    end
  end
  -- (batch..., M, N) back to one axis per label (nothing to do when no axes were merged)
  local same = #shape == #ys
  for i = 1, #ys do same = same and shape[i] == ys[i] end
  if not same then y = core.reshape(y, shape) end
  return { t = y, labels = labels }
end

-- The order of pairwise contractions: a list of {i, j} into the list of live operands (each
-- step removes i and j, i < j, and appends their result), chosen by least multiply-adds.
local function plan(ops, out_set, size)
  local function labelset(op)
    local s = {}
    for _, l in ipairs(op.labels) do s[l] = true end
    return s
  end
  local sets = {}
  for i, op in ipairs(ops) do sets[i] = labelset(op) end
  local function pair_cost(live, i, j)
    -- the union's size, and the result's labels (those still needed elsewhere)
    local keep = {}
    for l in pairs(out_set) do keep[l] = true end
    for k, s in ipairs(live) do
      if k ~= i and k ~= j then for l in pairs(s) do keep[l] = true end end
    end
    local cost, res = 1, {}
    local seen = {}
    for _, s in ipairs({ live[i], live[j] }) do
      for l in pairs(s) do
        if not seen[l] then
          seen[l] = true
          cost = cost * size(l)
          if keep[l] then res[l] = true end
        end
      end
    end
    return cost, res
  end
  local function after(live, i, j, res)
    local nxt = {}
    for k, s in ipairs(live) do if k ~= i and k ~= j then nxt[#nxt + 1] = s end end
    nxt[#nxt + 1] = res
    return nxt
  end
  if #sets <= 6 then
    local best, best_path = math.huge, nil
    local path = {}
    local function search(live, cost)
      if cost >= best then return end
      if #live == 1 then best = cost; best_path = { unpack(path) }; return end
      for i = 1, #live - 1 do
        for j = i + 1, #live do
          local c, res = pair_cost(live, i, j)
          path[#path + 1] = { i, j }
          search(after(live, i, j, res), cost + c)
          path[#path] = nil
        end
      end
    end
    search(sets, 0)
    return best_path
  end
  local live, steps = sets, {}
  while #live > 1 do
    local bc, bi, bj, br = math.huge, nil, nil, nil
    for i = 1, #live - 1 do
      for j = i + 1, #live do
        local c, res = pair_cost(live, i, j)
        if c < bc then bc, bi, bj, br = c, i, j, res end
      end
    end
    steps[#steps + 1] = { bi, bj }
    live = after(live, bi, bj, br)
  end
  return steps
end

-- Contracts operands (each {t=, labels=}) into the output labels `out` (a list). The core of
-- einsum and tensordot; labels are any Lua values that compare with ==.
function M.contract(fname, ops, out)
  local out_set = {}
  for _, l in ipairs(out) do out_set[l] = true end
  local sizes = {}
  for _, op in ipairs(ops) do
    for i, l in ipairs(op.labels) do
      local s = op.t.shape[i]
      if unknown(s) then s = COST_UNKNOWN end
      if not sizes[l] or s > sizes[l] then sizes[l] = s end
    end
  end
  local function size(l) return sizes[l] or 1 end
  -- 1, 2: diagonals, then labels of one operand only
  local count = {}
  for k, op in ipairs(ops) do
    op = take_diagonals(fname, op)
    ops[k] = op
    for _, l in ipairs(op.labels) do count[l] = (count[l] or 0) + 1 end
  end
  for k, op in ipairs(ops) do
    ops[k] = sum_unkept(op, setmetatable({}, { __index = function(_, l) return out_set[l] or count[l] > 1 end }))
  end
  -- 3: pairs in the cheapest order
  M.last_plan = nil
  if #ops > 1 then
    local steps = plan(ops, out_set, size)
    M.last_plan = steps   -- (read by the spec: the order chosen)
    for _, step in ipairs(steps) do
      local i, j = step[1], step[2]
      local keep = {}
      for l in pairs(out_set) do keep[l] = true end
      for k, op in ipairs(ops) do
        if k ~= i and k ~= j then for _, l in ipairs(op.labels) do keep[l] = true end end
      end
      local r = contract_pair(fname, ops[i], ops[j], keep)
      local nxt = {}
      for k, op in ipairs(ops) do if k ~= i and k ~= j then nxt[#nxt + 1] = op end end
      nxt[#nxt + 1] = r
      ops = nxt
    end
  end
  -- 4: the rest summed, then the output's order
  local r = sum_unkept(ops[1], out_set)
  local perm = {}
  for k, l in ipairs(out) do perm[k] = index_of(r.labels, l) end
  if #perm > 0 and not is_identity(perm) then return core.permute(r.t, perm) end
  return r.t
end

-- ---- parsing ------------------------------------------------------------------------------

-- A term's labels as a list, with "..." as the one entry true (or nil when absent).
local function parse_term(eq, term, what)
  local labels, has_ell = {}, false
  local i = 1
  while i <= #term do
    local c = term:sub(i, i)
    if c == "." then
      if term:sub(i, i + 2) ~= "..." then
        raise(("einsum: '.' that is not part of '...' in %s '%s' of \"%s\""):format(what, term, eq))
      end
      if has_ell then raise(("einsum: '...' appears twice in %s '%s' of \"%s\""):format(what, term, eq)) end
      has_ell = true
      labels[#labels + 1] = true
      i = i + 3
    elseif c:match("^[a-zA-Z]$") then
      labels[#labels + 1] = c
      i = i + 1
    else
      raise(("einsum: invalid character '%s' in %s '%s' of \"%s\" (indices are letters a-z, A-Z; '...' broadcasts)")
        :format(c, what, term, eq))
    end
  end
  return labels, has_ell
end

--- mg.einsum(equation, a, b, ...) -> tensor
--- Einstein summation over any number of operands (NumPy's np.einsum, TF's tf.einsum): letters
--- index axes, an index repeated within an operand takes its diagonal, an index left out of the
--- output is summed, `...` broadcasts the leading axes, and without `->` the output is `...` then
--- the indices that occur once, in alphabetical order (upper case first, as NumPy). The operands
--- are contracted two at a time in the order of fewest multiply-adds, each pair as one batched
--- matmul (BLIS), so gradients (any order) and staging come from those ops.
--- Example:
---   local a, b = mg.ones{2, 3}, mg.ones{3, 4}
---   print(mg.einsum("ij,jk->ik", a, b).shape[2])   -- 4
---   print(mg.einsum("ii", mg.eye(3)):item())       -- 3.0 (the trace)
function M.einsum(eq, ...)
  if type(eq) ~= "string" then
    raise("einsum: the first argument must be the equation (a string), got " .. (core.is_tensor(eq) and "a tensor" or type(eq)))
  end
  local tensors = { ... }
  local nargs = select("#", ...)
  local spec = eq:gsub("%s", "")
  local lhs, rhs = spec, nil
  local arrow = spec:find("->", 1, true)
  if arrow then
    lhs, rhs = spec:sub(1, arrow - 1), spec:sub(arrow + 2)
    if rhs:find("->", 1, true) then raise(("einsum: '->' appears twice in \"%s\""):format(eq)) end
  end
  if spec:find("-", 1, true) and not arrow or (rhs and rhs:find("[-<>]")) or lhs:find("[-<>]") then
    raise(("einsum: a lone '-' or '>' in \"%s\" (the output follows '->')"):format(eq))
  end
  local terms = {}
  for term in (lhs .. ","):gmatch("([^,]*),") do terms[#terms + 1] = term end
  if #terms ~= nargs then
    raise(("einsum: \"%s\" names %d operand%s but %d %s given"):format(eq, #terms, #terms == 1 and "" or "s",
      nargs, nargs == 1 and "was" or "were"))
  end
  local ops, ell_nd = {}, 0
  for k = 1, nargs do
    local t = tensors[k]
    if not core.is_tensor(t) then
      raise(("einsum: operand %d must be a tensor, got %s"):format(k, type(t)))
    end
    local labels, has_ell = parse_term(eq, terms[k], "operand " .. k)
    local nd = #t.shape
    local nletters = #labels - (has_ell and 1 or 0)
    if (has_ell and nd < nletters) or (not has_ell and nd ~= nletters) then
      raise(("einsum: operand %d has shape %s (%d axes) but its term '%s' of \"%s\" names %d%s"):format(
        k, shape_str(t.shape), nd, terms[k], eq, nletters, has_ell and " and more for '...'" or ""))
    end
    if has_ell then
      -- '...' stands for nd - nletters axes, named "...1" (the last of them), "...2", ...
      local full, n = {}, nd - nletters
      if n > ell_nd then ell_nd = n end
      for _, l in ipairs(labels) do
        if l == true then
          for j = n, 1, -1 do full[#full + 1] = "..." .. j end
        else
          full[#full + 1] = l
        end
      end
      labels = full
    end
    ops[k] = { t = t, labels = labels }
  end
  -- sizes agree (an axis of '...' may be 1 where others are n, as NumPy broadcasts)
  local size_of, where_of = {}, {}
  for k, op in ipairs(ops) do
    for i, l in ipairs(op.labels) do
      local s = op.t.shape[i]
      local prev = size_of[l]
      if prev ~= nil and where_of[l] == k and s ~= prev and not unknown(s) and not unknown(prev) then
        raise(("einsum: index '%s' is repeated in one operand over axes of sizes %s and %s (operand %d, shape %s)"):format(
          l, tostring(prev), tostring(s), k, shape_str(op.t.shape)))
      end
      if prev == nil or (prev == 1 and l:sub(1, 3) == "...") then
        if prev == nil or s ~= 1 then size_of[l], where_of[l] = s, k end
      elseif s ~= prev and not (s == 1 and l:sub(1, 3) == "...") and not unknown(s) and not unknown(prev) then
        if l:sub(1, 3) == "..." then
          raise(("einsum: the '...' axes of operand %d %s and operand %d %s do not broadcast"):format(
            where_of[l], shape_str(ops[where_of[l]].t.shape), k, shape_str(op.t.shape)))
        end
        raise(("einsum: index '%s' has size %s in operand %d %s but %s in operand %d %s"):format(
          l, tostring(prev), where_of[l], shape_str(ops[where_of[l]].t.shape), tostring(s), k, shape_str(op.t.shape)))
      end
    end
  end
  local out = {}
  if rhs then
    local labels, has_ell = parse_term(eq, rhs, "the output")
    local seen = {}
    for _, l in ipairs(labels) do
      if l == true then
        for j = ell_nd, 1, -1 do out[#out + 1] = "..." .. j end
      else
        if seen[l] then raise(("einsum: index '%s' appears twice in the output '%s' of \"%s\""):format(l, rhs, eq)) end
        if size_of[l] == nil then
          raise(("einsum: output index '%s' of \"%s\" is not in any operand"):format(l, eq))
        end
        seen[l] = true
        out[#out + 1] = l
      end
    end
    if not has_ell and ell_nd > 0 then
      raise(("einsum: the operands have %d axes under '...' but the output '%s' of \"%s\" has no '...' to put them in")
        :format(ell_nd, rhs, eq))
    end
  else
    for j = ell_nd, 1, -1 do out[#out + 1] = "..." .. j end
    local count, letters = {}, {}
    for _, op in ipairs(ops) do
      for _, l in ipairs(op.labels) do
        if l:sub(1, 3) ~= "..." then
          if not count[l] then letters[#letters + 1] = l end
          count[l] = (count[l] or 0) + 1
        end
      end
    end
    table.sort(letters)
    for _, l in ipairs(letters) do if count[l] == 1 then out[#out + 1] = l end end
  end
  return M.contract("einsum", ops, out)
end

--- mg.tensordot(a, b, axes) -> tensor
--- Sums the products of a's and b's elements over the given axes (NumPy's np.tensordot, TF's
--- tf.tensordot): axes = n contracts a's last n axes with b's first n; axes = {{a axes}, {b axes}}
--- (1-based, negative from the end) the listed pairs; axes = {i, j} axis i of a with axis j of b.
--- The result has a's other axes, then b's. One matmul (BLIS); differentiable.
--- Example:
---   local y = mg.tensordot(mg.ones{2, 3, 4}, mg.ones{4, 3, 5}, {{2, 3}, {2, 1}})
---   print(y.shape[1], y.shape[2], y[1][1]:item())   -- 2  5  12.0
function M.tensordot(a, b, axes)
  for k, t in ipairs({ a, b }) do
    if not core.is_tensor(t) then
      raise(("tensordot: %s must be a tensor, got %s"):format(k == 1 and "a" or "b", type(t)))
    end
  end
  local na, nb = #a.shape, #b.shape
  local ax_a, ax_b = {}, {}
  local function norm(v, nd, which)
    if type(v) ~= "number" or v ~= math.floor(v) then
      raise(("tensordot: an axis of %s must be an integer, got %s"):format(which, tostring(v)))
    end
    local ax = v < 0 and nd + v + 1 or v
    if ax < 1 or ax > nd then
      raise(("tensordot: axis %d is out of range for %s of shape %s"):format(v, which,
        shape_str(which == "a" and a.shape or b.shape)))
    end
    return ax
  end
  if type(axes) == "number" then
    if axes ~= math.floor(axes) or axes < 0 or axes > na or axes > nb then
      raise(("tensordot: axes = %s must be an integer from 0 to %d for shapes %s and %s"):format(
        tostring(axes), math.min(na, nb), shape_str(a.shape), shape_str(b.shape)))
    end
    for i = 1, axes do ax_a[i] = na - axes + i; ax_b[i] = i end
  elseif type(axes) == "table" and type(axes[1]) == "number" and type(axes[2]) == "number" and #axes == 2 then
    ax_a[1], ax_b[1] = norm(axes[1], na, "a"), norm(axes[2], nb, "b")
  elseif type(axes) == "table" and type(axes[1]) == "table" and type(axes[2]) == "table" and #axes == 2 then
    if #axes[1] ~= #axes[2] then
      raise(("tensordot: axes lists of different lengths (%d for a, %d for b)"):format(#axes[1], #axes[2]))
    end
    for i = 1, #axes[1] do ax_a[i] = norm(axes[1][i], na, "a"); ax_b[i] = norm(axes[2][i], nb, "b") end
  else
    raise("tensordot: axes must be a number n, a pair {i, j} or a pair of lists {{a axes}, {b axes}}, got "
      .. type(axes))
  end
  local la, lb, out, seen_a, seen_b = {}, {}, {}, {}, {}
  for i = 1, na do la[i] = "a" .. i end
  for i = 1, nb do lb[i] = "b" .. i end
  for i = 1, #ax_a do
    local sa, sb = a.shape[ax_a[i]], b.shape[ax_b[i]]
    if sa ~= sb and not unknown(sa) and not unknown(sb) then
      raise(("tensordot: axis %d of a %s has size %s but axis %d of b %s has size %s"):format(
        ax_a[i], shape_str(a.shape), tostring(sa), ax_b[i], shape_str(b.shape), tostring(sb)))
    end
    if seen_a[ax_a[i]] or seen_b[ax_b[i]] then
      raise(("tensordot: axis %d of %s is listed twice in axes"):format(
        seen_a[ax_a[i]] and ax_a[i] or ax_b[i], seen_a[ax_a[i]] and "a" or "b"))
    end
    seen_a[ax_a[i]], seen_b[ax_b[i]] = true, true
    lb[ax_b[i]] = la[ax_a[i]]   -- the shared label
  end
  local contracted = {}
  for i = 1, #ax_a do contracted[la[ax_a[i]]] = true end
  for i = 1, na do if not contracted[la[i]] then out[#out + 1] = la[i] end end
  for i = 1, nb do if not contracted[lb[i]] then out[#out + 1] = lb[i] end end
  return M.contract("tensordot", { { t = a, labels = la }, { t = b, labels = lb } }, out)
end

return M
