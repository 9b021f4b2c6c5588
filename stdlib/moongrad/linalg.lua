-- moongrad.linalg: mg.linalg (TensorFlow's tf.linalg names, NumPy's where TF has none) and the
-- norms and clipping functions (mg.norm, mg.l2_normalize, mg.clip_by_norm,
-- mg.clip_by_global_norm), merged into `mg` by init.lua.
--
-- The factorizations are ops of the table (mg.raw.linalg_*, LAPACK kernels in
-- core/kernels/linalg.c, gradients in core/grad_linalg.c). This file unpacks the ops whose
-- results are several tensors (svd, eigh, slogdet return one packed tensor), builds R of QR as
-- triu(Q^T x) so that its gradient flows through Q's, and composes the rest from ops with
-- gradients: lstsq through QR, pinv through the SVD, matrix_power by repeated squaring, the
-- norms from reductions (the spectral and nuclear norms through the singular values).
-- Options go in a trailing table checked by moongrad.options. Portable Lua (5.4 and LuaJIT).
local core = require("moongrad.core")
local options = require("moongrad.options")

return function(mg)
  local M = {}          -- merged into mg
  local L = {}          -- mg.linalg
  M.linalg = L

  local function doc(f, text) mg.document(f, text); return f end

  local function need_tensor(fname, arg, x)
    if not core.is_tensor(x) then
      options.raise(("%s: %s must be a tensor, got %s"):format(fname, arg, type(x)))
    end
  end

  local function shape_str(x) return "(" .. table.concat(x.shape, ",") .. ")" end   -- as the engine writes shapes

  -- x[..., r0:r1, c0:c1] (0-based, end exclusive).
  local function block(x, r0, r1, c0, c1)
    local nd, b, e, s = x.ndim, {}, {}, {}
    for d = 1, nd do b[d], e[d], s[d] = 0, x.shape[d], 1 end
    b[nd - 1], e[nd - 1], b[nd], e[nd] = r0, r1, c0, c1
    return core.slice(x, b, e, s)
  end

  local function T(x) return core.transpose(x) end

  -- ---- the factorizations ------------------------------------------------------------------

  L.inv = doc(function(x)
    need_tensor("linalg.inv", "x", x)
    return core.linalg_inv(x)
  end, "mg.linalg.inv(x) -> tensor\n"
    .. "  The inverse of each square matrix in the last two axes of x, batched over the leading axes\n"
    .. "  (LAPACK getrf+getri; float32/float64, integers give float32). A singular matrix is an error\n"
    .. "  naming the batch element (as PyTorch), not a tensor of infs. Gradient -inv^T g inv^T.\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.inv(mg.tensor{{4.0, 7.0}, {2.0, 6.0}}))")

  -- a 1-d rhs is a vector: solved as a one-column matrix.
  local function with_rhs(fname, a, b, f)
    need_tensor(fname, "matrix", a)
    need_tensor(fname, "rhs", b)
    if b.ndim == 1 then return core.squeeze(f(a, core.unsqueeze(b, -1)), -1) end
    return f(a, b)
  end

  local solve_spec = { adjoint = "boolean" }
  L.solve = doc(function(a, b, opts)
    options.check("linalg.solve", opts, solve_spec)
    local adj = opts and opts.adjoint or false
    return with_rhs("linalg.solve", a, b, function(p, q) return core.linalg_solve(p, q, { adjoint = adj }) end)
  end, "mg.linalg.solve(a, b, {adjoint=false}) -> x\n"
    .. "  x with a x = b (a^T x = b with adjoint) for square a (..., n, n) and b (..., n, k) with the\n"
    .. "  same batch axes, or a 1-d b of n (LU with partial pivoting, LAPACK getrf+getrs). A singular a\n"
    .. "  is an error naming the batch element. Gradients to a and b.\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.solve(mg.tensor{{3.0, 1.0}, {1.0, 2.0}}, mg.tensor{9.0, 8.0}))  --> tensor([2., 3.], dtype=float32)")

  local tri_spec = { lower = "boolean", adjoint = "boolean" }
  L.triangular_solve = doc(function(a, b, opts)
    options.check("linalg.triangular_solve", opts, tri_spec)
    local lower = true
    if opts and opts.lower ~= nil then lower = opts.lower end
    local adj = opts and opts.adjoint or false
    return with_rhs("linalg.triangular_solve", a, b, function(p, q)
      return core.linalg_triangular_solve(p, q, { lower = lower, adjoint = adj })
    end)
  end, "mg.linalg.triangular_solve(a, b, {lower=true, adjoint=false}) -> x\n"
    .. "  x with a x = b (a^T x = b with adjoint), reading only the lower (or upper) triangle of a\n"
    .. "  (LAPACK trtrs; tf.linalg.triangular_solve). An exactly zero diagonal element is an error.\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.triangular_solve(mg.tensor{{2.0, 0.0}, {1.0, 1.0}}, mg.tensor{2.0, 3.0}))  --> tensor([1., 2.], dtype=float32)")

  L.det = doc(function(x)
    need_tensor("linalg.det", "x", x)
    return core.linalg_det(x)
  end, "mg.linalg.det(x) -> tensor\n"
    .. "  The determinant of each square matrix (LU); 0 for a singular one. Its gradient g det inv(x)^T\n"
    .. "  needs the inverse: at a singular x it is an error (as TF).\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.det(mg.tensor{{4.0, 7.0}, {2.0, 6.0}}))  --> tensor(10., dtype=float32)")

  L.slogdet = doc(function(x)
    need_tensor("linalg.slogdet", "x", x)
    local p = core.linalg_slogdet(x)
    return core.select(p, -1, 1), core.select(p, -1, 2)
  end, "mg.linalg.slogdet(x) -> sign, logabsdet\n"
    .. "  The sign and log|det| of each square matrix, without the overflow of det itself; a singular\n"
    .. "  matrix gives sign 0 and log|det| = -inf (as NumPy). The gradient of log|det| is inv(x)^T.\n"
    .. "  Example:\n"
    .. "    local s, l = mg.linalg.slogdet(mg.tensor{{0.0, 2.0}, {3.0, 0.0}})\n"
    .. "    print(s, l)  --> tensor(-1., dtype=float32)	tensor(1.7918, dtype=float32)")

  L.cholesky = doc(function(x)
    need_tensor("linalg.cholesky", "x", x)
    return core.linalg_cholesky(x)
  end, "mg.linalg.cholesky(x) -> L\n"
    .. "  The lower-triangular L with L L^T = x for symmetric positive-definite x, reading x's lower\n"
    .. "  triangle (LAPACK potrf). A matrix that is not positive-definite is an error naming the batch\n"
    .. "  element and the failing leading minor. The gradient is PyTorch's formula, given for the lower\n"
    .. "  triangle the op reads (zero above the diagonal).\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.cholesky(mg.tensor{{4.0, 2.0}, {2.0, 2.0}}))  --> tensor([[2., 0.], [1., 1.]], dtype=float32)")

  local qr_spec = { mode = { "string", one_of = { "reduced", "complete" } } }
  L.qr = doc(function(x, opts)
    need_tensor("linalg.qr", "x", x)
    options.check("linalg.qr", opts, qr_spec)
    if x.ndim < 2 then
      options.raise(("linalg.qr: x must be a matrix or a batch of matrices (at least 2-d), got shape %s"):format(shape_str(x)))
    end
    local q = core.linalg_qr_q(x, { mode = opts and opts.mode or "reduced" })
    local r = core.linalg_band_part(core.matmul(T(q), core.cast(x, q.dtype)), { num_lower = 0, num_upper = -1 })
    return q, r
  end, "mg.linalg.qr(x, {mode=\"reduced\"}) -> q, r\n"
    .. "  x = q r with orthonormal columns in q and upper-triangular r (LAPACK geqrf+orgqr, LAPACK's\n"
    .. "  signs as NumPy): q (m, min(m, n)) and r (min(m, n), n), or with mode \"complete\" q (m, m) and\n"
    .. "  r (m, n). Gradients as TF (full-rank x; mode \"complete\" with m > n has none).\n"
    .. "  Example:\n"
    .. "    local q, r = mg.linalg.qr(mg.tensor{{3.0, 1.0}, {4.0, 2.0}})\n"
    .. "    print(mg.matmul(q, r))  --> tensor([[3., 1.], [4., 2.]], dtype=float32)")

  local svd_spec = { full_matrices = "boolean", compute_uv = "boolean" }
  L.svd = doc(function(x, opts)
    need_tensor("linalg.svd", "x", x)
    options.check("linalg.svd", opts, svd_spec)
    local full = opts and opts.full_matrices or false
    local uv = true
    if opts and opts.compute_uv ~= nil then uv = opts.compute_uv end
    local p = core.linalg_svd(x, { full_matrices = full, compute_uv = uv })
    if not uv then return p end
    local m, n = x.shape[x.ndim - 1], x.shape[x.ndim]
    local k = math.min(m, n)
    local uc, vc = full and m or k, full and n or k
    local s = core.squeeze(block(p, 0, 1, 0, k), -2)
    return s, block(p, 1, 1 + m, 0, uc), block(p, 1 + m, 1 + m + n, 0, vc)
  end, "mg.linalg.svd(x, {full_matrices=false, compute_uv=true}) -> s, u, v\n"
    .. "  The singular value decomposition x = u diag(s) v^T (TF's order and v, not v^T; LAPACK gesdd):\n"
    .. "  s descending (..., k), k = min(m, n), u (..., m, k), v (..., n, k), or (m, m) and (n, n) with\n"
    .. "  full_matrices; only s without compute_uv. The signs of the vectors are LAPACK's. Gradient:\n"
    .. "  PyTorch's formula, undefined (inf/NaN) for repeated singular values when the loss depends on\n"
    .. "  u or v; none for full_matrices with m ~= n (as TF).\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.svd(mg.tensor{{3.0, 0.0}, {0.0, -4.0}}, {compute_uv = false}))  --> tensor([4., 3.], dtype=float32)")

  L.eigh = doc(function(x)
    need_tensor("linalg.eigh", "x", x)
    local p = core.linalg_eigh(x)
    local n = x.shape[x.ndim]
    return core.squeeze(block(p, 0, 1, 0, n), -2), block(p, 1, n + 1, 0, n)
  end, "mg.linalg.eigh(x) -> e, v\n"
    .. "  The eigenvalues (ascending) and eigenvectors (the columns of v) of symmetric x, reading its\n"
    .. "  lower triangle (LAPACK syevd). Gradient: TF's formula, undefined (inf/NaN) for repeated\n"
    .. "  eigenvalues when the loss depends on v.\n"
    .. "  Example:\n"
    .. "    local e, v = mg.linalg.eigh(mg.tensor{{2.0, 1.0}, {1.0, 2.0}})\n"
    .. "    print(e)  --> tensor([1., 3.], dtype=float32)")

  local band_spec = {}
  L.band_part = doc(function(x, num_lower, num_upper)
    need_tensor("linalg.band_part", "x", x)
    options.check("linalg.band_part", {}, band_spec)
    return core.linalg_band_part(x, { num_lower = num_lower or -1, num_upper = num_upper or -1 })
  end, "mg.linalg.band_part(x, num_lower, num_upper) -> tensor\n"
    .. "  x with the elements more than num_lower below or num_upper above the diagonal zeroed (-1 keeps\n"
    .. "  that whole triangle; tf.linalg.band_part): band_part(x, 0, -1) is the upper triangle.\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.band_part(mg.tensor{{1, 2}, {3, 4}}, 0, -1))  --> tensor([[1, 2], [0, 4]], dtype=int64)")

  -- ---- compositions -------------------------------------------------------------------------

  L.lstsq = doc(function(a, b, opts)
    need_tensor("linalg.lstsq", "matrix", a)
    need_tensor("linalg.lstsq", "rhs", b)
    options.check("linalg.lstsq", opts, {})
    if a.ndim < 2 then
      options.raise(("linalg.lstsq: matrix must be at least 2-d, got shape %s"):format(shape_str(a)))
    end
    local vec = b.ndim == 1
    if vec then b = core.unsqueeze(b, -1) end
    local m, n = a.shape[a.ndim - 1], a.shape[a.ndim]
    if b.ndim ~= a.ndim or b.shape[b.ndim - 1] ~= m then
      options.raise(("linalg.lstsq: matrix %s and rhs %s do not match: rhs must be (..., m, k) for a matrix (..., m, n)")
        :format(shape_str(a), shape_str(vec and core.squeeze(b, -1) or b)))
    end
    local x
    if m >= n then   -- a = q r: x = r^-1 q^T b
      local q, r = L.qr(a)
      x = core.linalg_triangular_solve(r, core.matmul(T(q), b), { lower = false })
    else             -- the minimum-norm solution: a^T = q r, x = q r^-T b
      local q, r = L.qr(T(a))
      x = core.matmul(q, core.linalg_triangular_solve(r, b, { lower = false, adjoint = true }))
    end
    if vec then x = core.squeeze(x, -1) end
    return x
  end, "mg.linalg.lstsq(a, b) -> x\n"
    .. "  The least-squares solution of a x = b for a (..., m, n) of full rank and b (..., m, k) or a 1-d\n"
    .. "  b: the x minimising |a x - b| when m >= n, the smallest x solving it when m < n; through QR\n"
    .. "  (more accurate than TF's normal equations), with gradients. A rank-deficient a is an error\n"
    .. "  (a zero diagonal in R); mg.linalg.pinv(a) b handles it.\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.lstsq(mg.tensor{{1.0, 0.0}, {0.0, 1.0}, {1.0, 1.0}}, mg.tensor{1.0, 1.0, 2.0}))  --> tensor([1., 1.], dtype=float32)")

  local pinv_spec = { rcond = { "number", min = 0 } }
  L.pinv = doc(function(x, opts)
    need_tensor("linalg.pinv", "x", x)
    options.check("linalg.pinv", opts, pinv_spec)
    if x.ndim < 2 then
      options.raise(("linalg.pinv: x must be a matrix or a batch of matrices (at least 2-d), got shape %s"):format(shape_str(x)))
    end
    local m, n = x.shape[x.ndim - 1], x.shape[x.ndim]
    local s, u, v = L.svd(x)
    local eps = s.dtype == "float64" and 2.220446049250313e-16 or 1.1920929e-07
    local rcond = opts and opts.rcond or 10 * math.max(m, n) * eps
    local cut = core.mul(core.max(s, { axis = -1, keepdims = true }), rcond)
    local keep = core.greater(s, cut)
    local sinv = core.where(keep, core.reciprocal(core.where(keep, s, 1)), 0)
    return core.matmul(core.mul(v, core.unsqueeze(sinv, -2)), T(u))
  end, "mg.linalg.pinv(x, {rcond=}) -> tensor\n"
    .. "  The Moore-Penrose pseudo-inverse through the SVD: singular values at most rcond times the\n"
    .. "  largest count as zero (rcond defaults to TF's 10 max(m, n) eps). Gradients through the SVD\n"
    .. "  (undefined for repeated singular values).\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.pinv(mg.tensor{{2.0, 0.0}, {0.0, 0.0}}))  --> tensor([[0.5, 0. ], [0. , 0. ]], dtype=float32)")

  L.matrix_power = doc(function(x, n)
    need_tensor("linalg.matrix_power", "x", x)
    if type(n) ~= "number" or n ~= math.floor(n) then
      options.raise("linalg.matrix_power: n must be an integer, got " .. tostring(n))
    end
    if x.ndim < 2 or x.shape[x.ndim] ~= x.shape[x.ndim - 1] then
      options.raise(("linalg.matrix_power: x must be square in its last two axes, got shape %s"):format(shape_str(x)))
    end
    if n == 0 then
      local dt = (x.dtype == "float64" or x.dtype == "float32") and x.dtype or x.dtype
      return core.add(core.mul(x, 0), core.eye(x.shape[x.ndim], -1, dt))
    end
    if n < 0 then x, n = core.linalg_inv(x), -n end
    local result, base = nil, x
    while n > 0 do   -- repeated squaring: about 2 log2(n) products
      if n % 2 == 1 then result = result and core.matmul(result, base) or base end
      n = math.floor(n / 2)
      if n > 0 then base = core.matmul(base, base) end
    end
    return result
  end, "mg.linalg.matrix_power(x, n) -> tensor\n"
    .. "  x multiplied by itself n times (n an integer; 0 gives the identity, a negative n powers of the\n"
    .. "  inverse), by repeated squaring, with gradients.\n"
    .. "  Example:\n"
    .. "    print(mg.linalg.matrix_power(mg.tensor{{1, 1}, {0, 1}}, 5))  --> tensor([[1, 5], [0, 1]], dtype=int64)")

  -- ---- norms ---------------------------------------------------------------------------------

  local function is_inf(o) return o == math.huge or o == "inf" end
  local function is_ninf(o) return o == -math.huge or o == "-inf" end

  local function fdt(x)
    if x.dtype == "float64" or x.dtype == "float32" then return x end
    return core.cast(x, "float32")
  end

  -- a vector norm of x along axes (a table; nil: all)
  local function vector_norm(x, ord, axes, keep)
    local o = { axis = axes, keepdims = keep }
    local ax = core.abs(x)
    if ord == nil or ord == 2 then return core.sqrt(core.sum(core.mul(x, x), o)) end
    if is_inf(ord) then return core.max(ax, o) end
    if is_ninf(ord) then return core.min(ax, o) end
    if ord == 0 then return core.sum(core.cast(core.not_equal(x, 0), x.dtype), o) end
    if ord == 1 then return core.sum(ax, o) end
    return core.pow(core.sum(core.pow(ax, ord), o), 1 / ord)
  end

  local function norm_axis(fname, x, a)
    local nd = x.ndim
    local p = a < 0 and a + nd + 1 or a
    if a == 0 or p < 1 or p > nd then
      options.raise(("%s: axis %d is out of range for a %d-d tensor (valid: 1..%d or -%d..-1)"):format(fname, a, nd, nd, nd))
    end
    return p
  end

  local function matrix_norm(x, ord, r, c, keep)
    local ax = core.abs(x)
    local res
    if ord == nil or ord == "fro" then
      res = core.sqrt(core.sum(core.mul(x, x), { axis = { r, c }, keepdims = true }))
    elseif ord == 1 or ord == -1 then
      local cs = core.sum(ax, { axis = r, keepdims = true })
      res = ord == 1 and core.max(cs, { axis = c, keepdims = true }) or core.min(cs, { axis = c, keepdims = true })
    elseif is_inf(ord) or is_ninf(ord) then
      local rs = core.sum(ax, { axis = c, keepdims = true })
      res = is_inf(ord) and core.max(rs, { axis = r, keepdims = true }) or core.min(rs, { axis = r, keepdims = true })
    else   -- "nuc", 2, -2: the singular values of x with (r, c) moved last
      local nd, perm = x.ndim, {}
      for d = 1, nd do if d ~= r and d ~= c then perm[#perm + 1] = d end end
      perm[#perm + 1], perm[#perm + 2] = r, c
      local s = core.linalg_svd(core.permute(fdt(x), perm), { compute_uv = false })
      local v
      if ord == "nuc" then v = core.sum(s, { axis = -1 })
      elseif ord == 2 then v = core.max(s, { axis = -1 })
      else v = core.min(s, { axis = -1 }) end
      -- back to x's axes with r and c kept as size 1
      local shape = {}
      for d = 1, nd do shape[d] = (d == r or d == c) and 1 or x.shape[d] end
      res = core.reshape(v, shape)
    end
    if keep then return res end
    return core.squeeze(res, { r, c })
  end

  local matrix_ords = { fro = true, nuc = true }
  local norm_spec = {
    ord = { "number|string", check = function(v)
      if type(v) == "string" and not (matrix_ords[v] or v == "inf" or v == "-inf") then
        return "one of a number, math.huge, -math.huge, \"inf\", \"-inf\", \"fro\" or \"nuc\""
      end
    end },
    axis = "integer|table",
    keepdims = "boolean",
  }
  M.norm = doc(function(x, opts)
    need_tensor("norm", "x", x)
    options.check("norm", opts, norm_spec)
    local ord, axis, keep = opts and opts.ord, opts and opts.axis, opts and opts.keepdims or false
    x = fdt(x)
    if axis == nil then
      if ord == nil then
        return vector_norm(x, 2, nil, keep)
      end
      if x.ndim == 1 then axis = 1
      elseif x.ndim == 2 then axis = { 1, 2 }
      else options.raise(("norm: ord=%s needs axis= for a %d-d tensor (NumPy's rule: a vector norm for 1-d, a matrix norm for 2-d)"):format(tostring(ord), x.ndim)) end
    end
    if type(axis) == "number" then
      if type(ord) == "string" and matrix_ords[ord] then
        options.raise(("norm: ord=%q is a matrix norm and needs two axes, got axis=%d"):format(ord, axis))
      end
      if type(ord) == "number" and ord ~= ord then options.raise("norm: ord must not be NaN") end
      return vector_norm(x, ord, { norm_axis("norm", x, axis) }, keep)
    end
    if #axis ~= 2 then
      options.raise(("norm: axis must be one axis (a vector norm) or two (a matrix norm), got %d"):format(#axis))
    end
    local r, c = norm_axis("norm", x, axis[1]), norm_axis("norm", x, axis[2])
    if r == c then options.raise("norm: the two axes of a matrix norm must differ, got " .. axis[1] .. " and " .. axis[2]) end
    if not (ord == nil or matrix_ords[ord] or ord == 1 or ord == -1 or ord == 2 or ord == -2 or is_inf(ord) or is_ninf(ord)) then
      options.raise("norm: invalid ord " .. tostring(ord) .. " for a matrix norm (valid: \"fro\", \"nuc\", 1, -1, 2, -2, inf, -inf)")
    end
    return matrix_norm(x, ord, r, c, keep)
  end, "mg.norm(x, {ord=, axis=, keepdims=false}) -> tensor\n"
    .. "  A vector or matrix norm, as numpy.linalg.norm / tf.norm. With one axis (or a 1-d x) a vector\n"
    .. "  norm: ord 2 (default), 1, math.huge (max |x|), -math.huge (min |x|), 0 (the count of\n"
    .. "  nonzeros) or any p (sum |x|^p)^(1/p). With two axes (or a 2-d x and an ord) a matrix norm:\n"
    .. "  \"fro\" (default), \"nuc\" (the sum of the singular values), 1/-1 (max/min column sum), 2/-2\n"
    .. "  (largest/smallest singular value), math.huge/-math.huge (max/min row sum); \"inf\" and \"-inf\"\n"
    .. "  are accepted for math.huge. No axis and no ord: the 2-norm of all elements. The 2-norm's\n"
    .. "  gradient at x = 0 is NaN, as TF's (mg.clip_by_norm and l2_normalize avoid it).\n"
    .. "  Example:\n"
    .. "    print(mg.norm(mg.tensor{3.0, 4.0}))  --> tensor(5., dtype=float32)\n"
    .. "    print(mg.norm(mg.tensor{{1.0, -2.0}, {3.0, 4.0}}, {ord = 1}))  --> tensor(6., dtype=float32)")
  L.norm = M.norm

  local function axes_opt(fname, x, a, name)
    if a == nil then return nil end
    if type(a) == "number" then return { norm_axis(fname, x, a) } end
    local out = {}
    for i, v in ipairs(a) do out[i] = norm_axis(fname, x, v) end
    return out
  end

  local l2n_spec = { axis = "integer|table", epsilon = { "number", min = 0 } }
  M.l2_normalize = doc(function(x, opts)
    need_tensor("l2_normalize", "x", x)
    options.check("l2_normalize", opts, l2n_spec)
    x = fdt(x)
    local axes = axes_opt("l2_normalize", x, opts and opts.axis)
    local eps = opts and opts.epsilon or 1e-12
    local ss = core.sum(core.mul(x, x), { axis = axes, keepdims = true })
    return core.mul(x, core.rsqrt(core.maximum(ss, eps)))
  end, "mg.l2_normalize(x, {axis=, epsilon=1e-12}) -> tensor\n"
    .. "  x / sqrt(max(sum(x^2), epsilon)) over axis (an axis or a table of them; all when omitted), as\n"
    .. "  tf.math.l2_normalize: a zero vector stays zero, with a finite gradient.\n"
    .. "  Example:\n"
    .. "    print(mg.l2_normalize(mg.tensor{3.0, 4.0}))  --> tensor([0.6, 0.8], dtype=float32)")

  local cbn_spec = { axes = "integer|table" }
  M.clip_by_norm = doc(function(t, clip_norm, opts)
    need_tensor("clip_by_norm", "t", t)
    if type(clip_norm) ~= "number" and not core.is_tensor(clip_norm) then
      options.raise("clip_by_norm: clip_norm must be a number or a tensor, got " .. type(clip_norm))
    end
    if type(clip_norm) == "number" and not (clip_norm > 0) then
      options.raise("clip_by_norm: clip_norm must be > 0, got " .. tostring(clip_norm))
    end
    options.check("clip_by_norm", opts, cbn_spec)
    t = fdt(t)
    local axes = axes_opt("clip_by_norm", t, opts and opts.axes)
    -- TF's: the norm through a where, so that a zero t has a zero (not NaN) gradient
    local l2sum = core.sum(core.mul(t, t), { axis = axes, keepdims = true })
    local pred = core.greater(l2sum, 0)
    local l2norm = core.where(pred, core.sqrt(core.where(pred, l2sum, 1)), l2sum)
    return core.div(core.mul(t, clip_norm), core.maximum(l2norm, clip_norm))
  end, "mg.clip_by_norm(t, clip_norm, {axes=}) -> tensor\n"
    .. "  t scaled down so that its L2 norm over axes (all when omitted) is at most clip_norm:\n"
    .. "  t * clip_norm / max(norm(t), clip_norm), as tf.clip_by_norm.\n"
    .. "  Example:\n"
    .. "    print(mg.clip_by_norm(mg.tensor{3.0, 4.0}, 1))  --> tensor([0.6, 0.8], dtype=float32)")

  M.clip_by_global_norm = doc(function(list, clip_norm, use_norm)
    if type(list) ~= "table" or core.is_tensor(list) then
      options.raise("clip_by_global_norm: t_list must be a Lua table of tensors, got " .. (core.is_tensor(list) and "a tensor" or type(list)))
    end
    if type(clip_norm) ~= "number" or not (clip_norm > 0) then
      options.raise("clip_by_global_norm: clip_norm must be a number > 0, got " .. tostring(clip_norm))
    end
    local n = 0
    for k in pairs(list) do
      if type(k) == "number" and k > n then n = k end
    end
    local total
    for i = 1, n do
      local t = list[i]
      if t ~= nil then
        if not core.is_tensor(t) then
          options.raise(("clip_by_global_norm: t_list[%d] must be a tensor or nil, got %s"):format(i, type(t)))
        end
        local sq = core.sum(core.mul(fdt(t), fdt(t)))
        if sq.dtype ~= "float32" and sq.dtype ~= "float64" then sq = core.cast(sq, "float32") end
        total = total and core.add(total, sq) or sq
      end
    end
    local gnorm = use_norm or (total and core.sqrt(total) or core.full({}, 0, "float32"))
    -- TF's scale: clip_norm * min(1 / global_norm, 1 / clip_norm) (1 when the norm is 0)
    local scale = core.mul(clip_norm, core.minimum(core.reciprocal(gnorm), 1 / clip_norm))
    local out = {}
    for i = 1, n do
      local t = list[i]
      if t ~= nil then out[i] = core.mul(fdt(t), core.cast(scale, fdt(t).dtype)) end
    end
    return out, gnorm
  end, "mg.clip_by_global_norm(t_list, clip_norm, use_norm) -> clipped_list, global_norm\n"
    .. "  The tensors of t_list (nil entries stay nil) scaled by clip_norm / max(global_norm, clip_norm),\n"
    .. "  global_norm = sqrt(sum of sum(t^2)) over all of them, as tf.clip_by_global_norm (use_norm: a\n"
    .. "  global norm computed already).\n"
    .. "  Example:\n"
    .. "    local c, g = mg.clip_by_global_norm({mg.tensor{3.0}, mg.tensor{4.0}}, 1)\n"
    .. "    print(c[1], c[2], g)  --> tensor([0.6], dtype=float32)	tensor([0.8], dtype=float32)	tensor(5., dtype=float32)")

  return M
end
