-- moongrad.core for LuaJIT: the engine (libmoongrad.so) through the FFI.
--
-- The same surface as the Lua 5.4 C module (lua/capi), so stdlib/moongrad/*.lua
-- runs unchanged: the op functions are made from the op table itself
-- (mg_op_info), reading tensor inputs and attributes the way lua/capi/ops.c
-- does, with the same error texts; a tensor is a cdata box (struct
-- mgjit_box: an mg_tensor handle and a slot) whose metatype gives the
-- operators, the methods and the fields shape/dtype/ndim; engine errors are
-- raised as Lua errors carrying mg_last_error(); buffer bytes are reported to
-- the collector with collectgarbage("step", kb), paced like
-- lua/capi/tensor.c.
--
-- Boxes have no finaliser of their own. LuaJIT aborts the recording of a
-- trace whenever a finaliser runs, and eager code makes a garbage box per
-- op: with a __gc per box (or ffi.gc) nothing would ever compile, and an op
-- cost 4 us instead of 1. Instead each box owns a slot: handles[slot] holds
-- the reference, alive[slot] the box in a weak-valued table. Once the
-- collector has found a box dead, its entry in `alive` is gone, and the next
-- sweep releases the handle: sweeps run when the slots run out, when a
-- collection step finishes a cycle, and after the full collections the byte
-- pacing asks for. One ffi.gc finaliser (on the module's anchor) releases
-- whatever is left when the Lua state closes.
--
-- The declarations come from moongrad/ffi_cdef.lua, generated at build time
-- from core/mg.h by the C preprocessor (scripts/ffi_cdef.lua), with the path
-- of the library to load (MOONGRAD_LIB overrides it).
--
-- Callbacks (custom gradients, Lua functions inside graphs) are C-to-Lua
-- callbacks: each C call that may run one is made from a function kept out of
-- the JIT (jit.off), as LuaJIT requires, and every callback body runs under
-- pcall so that no Lua error unwinds through engine frames.
--
-- Differences from Lua 5.4 (doc/luajit.md): LuaJIT has one number type, so a
-- number with no fraction counts as an integer (mg.tensor{1.0} is int64, a
-- weak scalar 2.0 is integral); no // operator, no <close>; type(t) is
-- "cdata"; error messages about symbolic tensors that escape a trace do not
-- name the line that made them (that hook would be a callback inside every op).

if not rawget(_G, "jit") then
  -- PUC Lua found this file through a LuaJIT path: hand over to the C module.
  for i = 3, #package.searchers do
    local loader, extra = package.searchers[i]("moongrad.core")
    if type(loader) == "function" then return loader("moongrad.core", extra) end
  end
  error("moongrad.core: lua/ffi/moongrad/core.lua is the LuaJIT binding; under Lua 5.4 put the C module "
    .. "(build/lua/moongrad/core.so) on package.cpath", 2)
end

local ffi = require("ffi")
local bit = require("bit")
local jit = require("jit")
local gen = require("moongrad.ffi_cdef")

local D = gen.defines
if not pcall(ffi.typeof, "mgjit_box") then
  ffi.cdef(gen.cdef)
  ffi.cdef [[
    typedef struct mgjit_box { mg_tensor *h_; int32_t slot_; } mgjit_box;
    typedef struct mgjit_tape { mg_tape *t_; } mgjit_tape;
    typedef struct mgjit_graph { mg_graph *g_; } mgjit_graph;
    typedef struct mgjit_dim { int32_t probe_, axis_, fn_; } mgjit_dim;
    struct mgjit_timespec { long tv_sec; long tv_nsec; };
    int clock_gettime(int clk, struct mgjit_timespec *ts);
  ]]
end
local libpath = os.getenv("MOONGRAD_LIB") or gen.lib
local lib = ffi.load(libpath)
-- Never unload it (RTLD_NODELETE): closing the state would dlclose the library
-- under its running OpenMP worker threads (a crash at exit). The library is
-- also linked with -z nodelete; this covers builds that are not.
if ffi.os == "Linux" then
  if not pcall(ffi.typeof, "struct mgjit_dl") then ffi.cdef("struct mgjit_dl; void *dlopen(const char *file, int mode);") end
  ffi.C.dlopen(libpath, 0x1000 + 0x2)   -- RTLD_NODELETE | RTLD_NOW
end
local C = ffi.C

local M = {}
M.version = gen.version

local floor, huge, type, select, tostring = math.floor, math.huge, type, select, tostring
local rawget, rawequal, error, pairs = rawget, rawequal, error, pairs
local format = string.format
local istype, new, cast, fstring = ffi.istype, ffi.new, ffi.cast, ffi.string

-- The engine sets flush-to-zero and denormals-are-zero (MXCSR) on the
-- threads that run kernels, this one included. LuaJIT cannot live with DAZ:
-- its callbacks crash (measured: the second C-to-Lua callback after DAZ is
-- set segfaults) and Lua arithmetic would read denormal numbers as zero. So
-- DAZ is cleared again on this thread after each engine call that sets it;
-- flush-to-zero stays (harmless to LuaJIT, and it keeps kernels' outputs
-- free of denormals). The OpenMP workers, started later from this thread,
-- inherit the same setting.
local clear_daz = function() end
if ffi.arch == "x64" and ffi.os == "Linux" then
  if not pcall(ffi.typeof, "struct mgjit_fenv") then
    ffi.cdef("struct mgjit_fenv; int fegetenv(uint32_t *env); int fesetenv(const uint32_t *env);")
  end
  local env = ffi.new("uint32_t[8]")        -- glibc's fenv_t on x86-64: 32 bytes, MXCSR at byte 28
  clear_daz = function()
    if C.fegetenv(env) == 0 and bit.band(env[7], 0x40) ~= 0 then
      env[7] = bit.band(env[7], bit.bnot(0x40))
      C.fesetenv(env)
    end
  end
end

lib.mg_init()
local ctx = ffi.gc(lib.mg_ctx_new(), lib.mg_ctx_free)
clear_daz()
lib.mg_ctx_set_index_base(ctx, 1)

local dtype_names, dtype_ids, dtype_ctype, dtype_size = {}, {}, {}, {}
local ctypes = { float32 = "float", float64 = "double", int32 = "int32_t", int64 = "int64_t", uint8 = "uint8_t",
  bool = "uint8_t" }
for i = 0, lib.MG_NDTYPES - 1 do
  local name = fstring(lib.mg_dtype_name(i))
  dtype_names[i], dtype_ids[name] = name, i
  dtype_ctype[i] = ffi.typeof(ctypes[name] .. "*")
  dtype_size[i] = tonumber(lib.mg_dtype_size(i))
end
local F32, F64, I32, I64, U8, BOOL = dtype_ids.float32, dtype_ids.float64, dtype_ids.int32, dtype_ids.int64,
  dtype_ids.uint8, dtype_ids.bool

-- jit.off(f) for functions whose C calls may call back into Lua (LuaJIT
-- forbids a callback from a C call made by compiled code); returns f.
local function nojit(f)
  jit.off(f)
  return f
end

-- An integer in LuaJIT's one number type: no fraction, inside int64's range.
local function is_int(v) return v == floor(v) and v >= -9.2233720368547758e18 and v < 9.2233720368547758e18 end

local function last_error() return fstring(lib.mg_last_error()) end

-- Engine errors are raised at the user's line (as the C module does): the first frame from
-- `level` out whose chunk is not one of moongrad's own Lua files (set_own_sources).
local own_prefixes = {}
function M.set_own_sources(a, b) own_prefixes = { a, b } end
local function is_own_source(source)
  if not own_prefixes[1] then   -- before the stdlib said where it lives (as the C module)
    return source:find("moongrad/", 1, true) ~= nil or source:find("autograph/", 1, true) ~= nil
  end
  for i = 1, 2 do
    local p = own_prefixes[i]
    if p and source:sub(1, #p) == p then return true end
  end
  return false
end
local function user_level(level)
  local l = level + 1   -- +1: this function's own frame
  while true do
    local info = debug.getinfo(l, "S")
    if not info then return level end
    if info.what == "C" then   -- Lua's rule: called straight from C, no position; the library's own
      local up = debug.getinfo(l + 1, "S")   -- pcalls (from moongrad's files) are looked through
      if not up or up.what == "C" or not is_own_source(up.source) then return l - 1 end
    elseif not is_own_source(info.source) then
      return l - 1
    end
    l = l + 1
  end
end
-- error(msg, level), raised at the user's line: the first frame from `level` out outside moongrad.
local function uerror(msg, level)
  if level == 0 then error(msg, 0) end   -- a message that already carries its position
  error(msg, user_level((level or 1) + 1))
end
local function raise(level) error(last_error(), user_level(level + 1)) end

-- ---- boxes, slots and the collector ---------------------------------------------

local Box                        -- the tensor metatype (below)
local cap, next_unused, nfree = 1024, 1, 0
local handles = new("mg_tensor *[?]", cap + 1)    -- slot -> the reference a box owns
local alive = setmetatable({}, { __mode = "v" })  -- slot -> box, cleared by the collector
local free_slots = {}
local pushing = 0   -- the slot being filled: its box is not in `alive` yet

-- Releases the handles of boxes the collector has found dead. This loop is
-- compiled; only symbolic tensors (which hold a graph, whose release can call
-- back into Lua for its Lua function nodes) are released by a function kept
-- out of the JIT, as LuaJIT requires for callbacks.
local dead_symbolic = {}
local release_symbolic = nojit(function()
  for i = #dead_symbolic, 1, -1 do
    local h = dead_symbolic[i]
    dead_symbolic[i] = nil
    lib.mg_tensor_release(h)
  end
end)

local function sweep()
  local freed = 0
  for slot = 1, next_unused - 1 do
    local h = handles[slot]
    if h ~= nil and alive[slot] == nil and slot ~= pushing then
      handles[slot] = nil
      nfree = nfree + 1
      free_slots[nfree] = slot
      freed = freed + 1
      if lib.mg_tensor_is_symbolic(h) ~= 0 then dead_symbolic[#dead_symbolic + 1] = h
      else lib.mg_tensor_release(h) end
    end
  end
  if dead_symbolic[1] ~= nil then release_symbolic() end
  return freed
end

local function grow()
  local bigger = new("mg_tensor *[?]", 2 * cap + 1)
  ffi.copy(bigger, handles, (cap + 1) * ffi.sizeof("mg_tensor *"))
  handles, cap = bigger, 2 * cap
end

local function new_slot()
  if nfree > 0 then
    local slot = free_slots[nfree]
    nfree = nfree - 1
    return slot
  end
  if next_unused > cap then   -- full: reuse the dead ones' slots, or grow when they are all alive
    if sweep() < cap / 4 then grow() end
    if nfree > 0 then
      local slot = free_slots[nfree]
      nfree = nfree - 1
      return slot
    end
  end
  local slot = next_unused
  next_unused = slot + 1
  return slot
end

-- collectgarbage(): as the builtin, plus a sweep after a finished cycle, so
-- that buffers of dead tensors go when a script asks for a collection.
local lua_collectgarbage = collectgarbage
_G.collectgarbage = function(opt, arg)
  local r = lua_collectgarbage(opt, arg)
  if opt == nil or opt == "collect" or (opt == "step" and r) then sweep() end
  return r
end
local collectgarbage = lua_collectgarbage   -- the module itself sweeps where it needs to

local GC_REPORT, MAJOR_MIN = 64 * 1024, 4 * 1024 * 1024
local gc_pending, ext_since_major, major_threshold = 0, 0, MAJOR_MIN

-- Tells the collector about buffer bytes it cannot see (as lua/capi/tensor.c):
-- steps per 64 KiB, a full collection per max(4 MiB, live) bytes made; a
-- finished cycle is followed by a sweep, which frees the dead boxes' buffers.
local function report_bytes(nb)
  gc_pending = gc_pending + nb
  ext_since_major = ext_since_major + nb
  if ext_since_major >= major_threshold then
    collectgarbage("collect")
    sweep()
    local live = tonumber(lib.mg_storage_bytes_live()) + collectgarbage("count") * 1024
    major_threshold = live > MAJOR_MIN and live or MAJOR_MIN
    ext_since_major, gc_pending = 0, 0
  elseif gc_pending >= GC_REPORT then
    local kb = floor(gc_pending / 1024)
    gc_pending = gc_pending - kb * 1024
    if collectgarbage("step", kb) then sweep() end
  end
end

-- A box owning the reference t (stolen); fresh: new storage to report.
local function push(t, fresh)
  local slot = new_slot()
  handles[slot] = t
  pushing = slot     -- allocating the box may run a finaliser that sweeps
  local b = Box(t, slot)
  alive[slot] = b
  pushing = 0
  if fresh then
    local nb = tonumber(lib.mg_tensor_nbytes(t))
    if nb > 64 then report_bytes(nb) end   -- bigger than the inline storage
  end
  return b
end

-- The handle of a live tensor box, or nil.
local function testtensor(x)
  if istype(Box, x) then
    local h = x.h_
    if h ~= nil then return h end
  end
  return nil
end

local function typename(v)
  if istype(Box, v) then return "mg.Tensor" end
  return type(v)
end

-- ---- unknown sizes while tracing (lua/capi/dim.c) ------------------------------------
-- t.shape and #t give an unknown (-1) size of a symbolic tensor as an
-- mgjit_dim: it carries the probe size (shapes and integer attributes accept
-- it), equals the same unknown size, prints as "?", and refuses arithmetic,
-- ordering and concatenation (which would bake the probe into the graph).
-- A cdata, not a table: LuaJIT calls a cdata's metamethods also when the
-- other operand is a number (d < 3), tables' only between tables.
local Dim = ffi.typeof("mgjit_dim")
local dim_fns, dim_fn_ids = {}, {}   -- traced function names, interned

local function dim_message(d, use)
  local what = d.axis_ == 0 and "#t (size 1 of a traced tensor)"
    or d.axis_ < 0 and "t:numel() of a traced tensor with an unknown size"
    or format("shape[%d] of a traced tensor", d.axis_)
  return format("%s is unknown while tracing '%s' (a -1 size of its input signature); %s would bake a "
    .. "placeholder into the graph: use ops (mg.shape(x), mg.mean, reshape's -1, mg.sum(mg.ones_like(x)))",
    what, dim_fns[d.fn_], use)
end

-- Size `axis` (1-based; 0 for #t, which reads size 1; -1 for an unknown
-- element count, probe 0: usable as no size) of tensor handle t.
local function push_size(t, axis)
  local n = axis < 0 and 0 or tonumber(lib.mg_tensor_shape(t)[axis == 0 and 0 or axis - 1])
  if axis >= 0 and (lib.mg_size_is_unknown(n) == 0 or lib.mg_tensor_is_symbolic(t) == 0) then return n end
  local name = lib.mg_trace_name(ctx)
  name = name ~= nil and fstring(name) or "a staged function"
  local id = dim_fn_ids[name]
  if not id then
    id = #dim_fns + 1
    dim_fns[id], dim_fn_ids[name] = name, id
  end
  return Dim(n, axis, id)
end

local function isdim(v) return istype(Dim, v) end

-- An integer, or an unknown size's probe; nil for anything else.
local function tosize(v)
  if type(v) == "number" then return is_int(v) and v or nil end
  if istype(Dim, v) and v.probe_ ~= 0 then return v.probe_ end
  return nil
end

local function dim_refuse(use)
  return function(a, b) uerror(dim_message(istype(Dim, a) and a or b, use), 2) end
end
ffi.metatype(Dim, {
  __add = dim_refuse("Lua arithmetic '+' on it"), __sub = dim_refuse("Lua arithmetic '-' on it"),
  __mul = dim_refuse("Lua arithmetic '*' on it"), __div = dim_refuse("Lua arithmetic '/' on it"),
  __mod = dim_refuse("Lua arithmetic '%' on it"), __pow = dim_refuse("Lua arithmetic '^' on it"),
  __unm = dim_refuse("Lua arithmetic '-' on it"), __concat = dim_refuse("Lua concatenation '..' of it"),
  __lt = dim_refuse("a Lua comparison '<' of it"), __le = dim_refuse("a Lua comparison '<=' of it"),
  __eq = function(a, b)
    return istype(Dim, a) and istype(Dim, b) and a.probe_ ~= 0 and a.probe_ == b.probe_
  end,
  __tostring = function() return "?" end,
  __index = function(_, k) uerror(format("an unknown size has no field '%s'", tostring(k)), 2) end,
})

function M.is_unknown_size(v) return istype(Dim, v) end

local function checktensor(x, argn, fname)
  local h = testtensor(x)
  if not h then
    uerror(format("bad argument #%d to '%s' (mg.Tensor expected, got %s)", argn, fname, typename(x)), 3)
  end
  return h
end

-- ---- Lua tables to tensors ----------------------------------------------------

local MAX_DIMS = D.MG_MAX_DIMS

-- A table key as the user wrote it, for messages (as lua/capi/tensor.c).
local function key_str(k)
  if type(k) == "string" then return "'" .. k .. "'" end
  if type(k) == "number" then return is_int(k) and format("%d", k) or format("%.14g", k) end
  return "of type " .. typename(k)
end

-- The table must be a sequence of n elements (keys 1..n and nothing else):
-- mg.tensor{a = 1} is no empty tensor and {1, nil, 3} has no reliable length.
local function check_sequence(t, n, d)
  local count = 0
  for k in pairs(t) do
    if type(k) == "number" and is_int(k) and k > n then   -- past the length: a nil at n + 1 comes first
      return format("tensor: the table at depth %d has a hole: element %d is nil (a list with nil in it has no "
        .. "reliable length)", d, n + 1)
    end
    if type(k) ~= "number" or not is_int(k) or k < 1 then
      return format("tensor: the table at depth %d has the key %s; a tensor's data is a list (keys 1..n) of numbers, "
        .. "booleans or such lists", d, key_str(k))
    end
    count = count + 1
  end
  if count == n then return nil end
  for i = 1, n do
    if rawget(t, i) == nil then
      return format("tensor: the table at depth %d has a hole: element %d is nil (a list with nil in it has no "
        .. "reliable length)", d, i)
    end
  end
end

local INT_RANGE = { [I32] = { -2147483648, 2147483647 }, [I64] = { -2 ^ 63, 2 ^ 63 }, [U8] = { 0, 255 } }

-- Checks the nested table (rectangular, a sequence at every level, numbers or
-- booleans, and numbers that fit dt when it is given) and flattens it.
local function flatten(tbl, dt)
  local shape, depth, x = {}, 0, tbl
  while type(x) == "table" do
    if depth == MAX_DIMS then
      return nil, format("tensor: nested tables deeper than %d dimensions", MAX_DIMS)
    end
    depth = depth + 1
    shape[depth] = #x
    x = x[1]
  end
  local range = dt and INT_RANGE[dt]
  local flat, n, kinds = {}, 0, { int = false, float = false, bool = false }
  local function walk(t, d)
    local len = shape[d]
    if #t ~= len then
      return format("tensor: ragged nested table: a row at depth %d has %d elements, expected %d", d, #t, len)
    end
    local err = check_sequence(t, len, d)
    if err then return err end
    for i = 1, len do
      local v = t[i]
      if d < depth then
        if type(v) ~= "table" then
          return format("tensor: ragged nested table: expected a table at depth %d, got %s", d + 1, type(v))
        end
        err = walk(v, d + 1)
        if err then return err end
      elseif type(v) == "number" then
        local int = is_int(v)
        if int then kinds.int = true else kinds.float = true end
        if range and not (int and v >= range[1] and v <= range[2]) then   -- the C check words the error
          lib.mg_check_number("tensor", nil, dt, int and 1 or 0, int and v or 0, v)
          return last_error()
        end
        n = n + 1
        flat[n] = v
      elseif type(v) == "boolean" then
        kinds.bool = true
        n = n + 1
        flat[n] = v
      elseif isdim(v) then   -- its probe would become a constant
        return "tensor: " .. dim_message(v, "putting it in a tensor's data")
      else
        return format("tensor: expected numbers or booleans in the nested table, got %s%s", typename(v),
          type(v) == "table" and " (rows nested deeper than the first row)" or "")
      end
    end
  end
  local err
  if depth > 0 then err = walk(tbl, 1) else err = check_sequence(tbl, 0, 1) end
  if err then return nil, err end
  return { shape = shape, ndim = depth, flat = flat, n = n, kinds = kinds }
end

-- Writes a Lua value into element i of a typed buffer (flatten checked that a
-- number fits an integer dtype exactly).
local function store(p, dt, i, v)
  if type(v) == "boolean" then v = v and 1 or 0 end
  if dt == BOOL then p[i] = v ~= 0 and 1 or 0; return end
  p[i] = v
end

local shape_buf = new("int64_t[?]", MAX_DIMS)
local outp = new("mg_tensor *[1]")

-- A new tensor from a nested table; nil, message on failure (error set).
local function table_to_tensor(tbl, has_dtype, dt)
  local f, err = flatten(tbl, has_dtype and dt or nil)
  if not f then lib.mg_seterror(lib.MG_ESHAPE, "%s", err); return nil, err end
  local k = f.kinds
  if k.bool and (k.int or k.float) then
    err = "tensor: nested table mixes booleans and numbers"
    lib.mg_seterror(1, "%s", err)
    return nil, err
  end
  if not has_dtype then dt = k.float and F32 or k.bool and BOOL or k.int and I64 or F32 end
  for i = 1, f.ndim do shape_buf[i - 1] = f.shape[i] end
  if lib.mg_tensor_empty(dt, f.ndim, shape_buf, outp) ~= 0 then return nil, last_error() end
  local t = outp[0]
  if f.n > 0 then
    local p = cast(dtype_ctype[dt], lib.mg_tensor_data(t))
    local flat = f.flat
    for i = 1, f.n do store(p, dt, i - 1, flat[i]) end
  end
  return t
end

local scalar_out = new("mg_tensor *[1]")

-- A new reference for a Lua value used as a tensor (mgL_totensor): a tensor,
-- a number (a weak scalar) or a nested table. nil, message when it is none.
local function totensor(v, opname, argn)
  local tv = type(v)
  if tv == "number" then
    local st = is_int(v) and lib.mg_scalar_i64(v, 1, scalar_out) or lib.mg_scalar_f64(v, 1, scalar_out)
    if st ~= 0 then return nil, last_error() end
    return scalar_out[0]
  elseif tv == "table" then
    local t, err = table_to_tensor(v, false, F32)
    if not t then
      err = format("%s: argument #%d: %s", opname, argn, err)
      lib.mg_seterror(1, "%s", err)
      return nil, err
    end
    return t
  elseif tv == "cdata" then
    local h = testtensor(v)
    if h then
      lib.mg_tensor_retain(h)
      return h
    end
    if isdim(v) then   -- an unknown size as a value: its probe would become a constant
      local err = dim_message(v, format("using it as argument #%d of '%s'", argn, opname))
      lib.mg_seterror(1, "%s", err)
      return nil, err
    end
  end
  local err = format("%s: argument #%d must be a tensor, a number or a nested table, got %s", opname, argn,
    typename(v))
  lib.mg_seterror(1, "%s", err)
  return nil, err
end

-- ---- tensors to Lua values ------------------------------------------------------

local function element(t, dt, flat)
  if dt == BOOL then return lib.mg_tensor_get_i64(t, flat) ~= 0 end
  return lib.mg_tensor_get_f64(t, flat)
end

local function totable(t)
  local dt, ndim, n = lib.mg_tensor_dtype(t), lib.mg_tensor_ndim(t), tonumber(lib.mg_tensor_numel(t))
  if ndim == 0 then return element(t, dt, 0) end
  local buf = new(ctypes[dtype_names[dt]] .. "[?]", n > 0 and n or 1)
  if n > 0 and lib.mg_tensor_copy_to(t, buf, n * dtype_size[dt]) ~= 0 then uerror(last_error(), 3) end
  local shape = lib.mg_tensor_shape(t)
  local dims = {}
  for d = 1, ndim do dims[d] = tonumber(shape[d - 1]) end
  local at = 0
  local isbool, is64 = dt == BOOL, dt == I64
  local function rows(d)
    local out = {}
    for i = 1, dims[d] do
      if d == ndim then
        local v = buf[at]
        at = at + 1
        if isbool then out[i] = v ~= 0 elseif is64 then out[i] = tonumber(v) else out[i] = v end
      else
        out[i] = rows(d + 1)
      end
    end
    return out
  end
  return rows(1)
end

-- ---- applying ops ------------------------------------------------------------------

local inputs = new("mg_tensor *[?]", 4096)
local attrs = new("mg_attrs")
local op_info, op_attrs = {}, {}    -- op id -> mg_opinfo*, Lua list of attribute descriptions
local VIEW = D.MG_VIEW

-- Runs op on inputs[0..nin-1] and returns the result box, or raises at
-- `level`; releases the owned inputs (a list of handles, may be nil) first.
local function apply(op, nin, a, owned, level)
  local st = lib.mg_apply(ctx, op, inputs, nin, a, outp)
  if owned then for i = 1, #owned do lib.mg_tensor_release(owned[i]) end end
  if st ~= 0 then raise(level + 1) end
  return push(outp[0], bit.band(op_info[op].flags, VIEW) == 0)
end

-- One input of an op (mgL_toinput): a tensor is borrowed; numbers and tables
-- give new references, added to `owned`.
local function input(v, opname, argn, owned, level)
  local h = testtensor(v)
  if h then return h end
  local t, err = totensor(v, opname, argn)
  if not t then
    for i = 1, #owned do lib.mg_tensor_release(owned[i]) end
    uerror(err, level + 1)
  end
  owned[#owned + 1] = t
  return t
end

-- ---- attributes (lua/capi/ops.c) -------------------------------------------------------

local KIND = { [0] = "int", "float", "bool", "dtype", "axis", "axes", "shape", "ints", "enum" }
local MAX_LIST = D.MG_MAX_LIST

local function is_list_kind(kind) return kind == "axes" or kind == "shape" or kind == "ints" end

local function bad_attr(info, d, want, v)
  if isdim(v) then   -- an unknown element count (t:numel()): no size stands for it
    return info.name .. ": " .. dim_message(v, format("using it as option '%s' of '%s'", d.name, info.name))
  end
  local got = typename(v)
  if type(v) == "number" then got = v ~= v and "nan" or (v == huge or v == -huge) and "inf" or "a number with a fraction" end
  return format("%s: option '%s' must be %s, got %s", info.name, d.name, want, got)
end

-- Converts v into attribute slot k (0-based) of `attrs`; nil leaves it unset.
local function read_attr(v, info, k)
  local d = info.attrs[k + 1]
  if v == nil then return nil end
  local slot = attrs.v[k]
  attrs.set = bit.bor(attrs.set, bit.lshift(1, k))
  slot.n = 1
  local kind, tv = d.kind, type(v)
  if kind == "int" or kind == "axis" then
    local n = tosize(v)   -- an unknown size gives its probe (the executor maps it back)
    if not n then return bad_attr(info, d, "an integer", v) end
    slot.i[0] = n
  elseif kind == "float" then
    if tv ~= "number" then return bad_attr(info, d, "a number", v) end
    slot.f = v
  elseif kind == "bool" then
    if tv ~= "boolean" then return bad_attr(info, d, "a boolean", v) end
    slot.i[0] = v and 1 or 0
  elseif kind == "dtype" then
    if tv ~= "string" then return bad_attr(info, d, "a dtype name (mg.float32, ...)", v) end
    local id = dtype_ids[v]
    if not id then
      return format("%s: unknown dtype '%s' (float32, float64, int32, int64, uint8, bool)", info.name, v)
    end
    slot.i[0] = id
  elseif kind == "enum" then
    if tv == "string" then
      for e = 1, #d.enums do
        if d.enums[e] == v then slot.i[0] = e - 1; return nil end
      end
    end
    local en = d.enums
    return format("%s: option '%s' must be one of %s%s%s%s%s, got %s", info.name, d.name, en[1], #en > 1 and ", " or "",
      en[2] or "", #en > 2 and ", " or "", en[3] or "", tv == "string" and v or typename(v))
  else  -- lists: one integer or a table of them
    if tv == "number" or isdim(v) then
      local n = tosize(v)
      if not n then return bad_attr(info, d, "an integer or a list of integers", v) end
      slot.i[0] = n
      return nil
    end
    if tv ~= "table" or testtensor(v) then return bad_attr(info, d, "a list of integers", v) end
    local n = #v
    if n > MAX_LIST then
      return format("%s: option '%s' has %d entries, at most %d are supported", info.name, d.name, n, MAX_LIST)
    end
    slot.n = n
    for i = 1, n do
      local x = tosize(v[i])
      if not x then return bad_attr(info, d, "a list of integers", v[i]) end
      slot.i[i - 1] = x
    end
  end
  return nil
end

-- A table of options (any string key), as opposed to a positional list.
local function is_options_table(v, nextd)
  if type(v) ~= "table" then return false end
  local k = next(v)
  if k == nil then return not (nextd and is_list_kind(nextd.kind)) end  -- {}
  for key in pairs(v) do
    if type(key) == "string" then return true end
  end
  return false
end

local function read_options(v, info)
  for key, val in pairs(v) do
    local k
    if type(key) == "string" then
      for j = 1, #info.attrs do
        if info.attrs[j].name == key then k = j - 1 end
      end
    end
    if not k then
      local known = {}
      for j = 1, #info.attrs do known[j] = info.attrs[j].name end
      return format("%s: unknown option '%s' (options: %s)", info.name, type(key) == "string" and key or "?",
        #known > 0 and table.concat(known, ", ") or "none")
    end
    local err = read_attr(val, info, k)
    if err then return err end
  end
  return nil
end

-- Reads attributes from args[first..n] (a packed list).
local function read_attrs(args, first, n, info)
  attrs.set = 0
  for p = first, n do
    local k = p - first
    local nextd = info.attrs[k + 1]
    local v = args[p]
    if is_options_table(v, nextd) then
      if p ~= n then return format("%s: the options table must be the last argument", info.name) end
      return read_options(v, info)
    end
    if not nextd then
      if v ~= nil then
        return format("%s: too many arguments (%d given after the %d tensor input%s; options: %d)", info.name,
          n - first + 1, info.nin < 0 and 1 or info.nin, info.nin == 1 and "" or "s", #info.attrs)
      end
    else
      local err = read_attr(v, info, k)
      if err then return err end
    end
  end
  return nil
end

-- ---- op functions ------------------------------------------------------------------------

local ops_list = {}

local function describe(op)
  local ci = lib.mg_op_info(op)
  local info = { id = op, name = fstring(ci.name), nin = ci.nin, flags = ci.flags, doc = fstring(ci.doc),
    has_grad = ci.has_grad ~= 0, attrs = {} }
  for k = 0, ci.nattrs - 1 do
    local a = ci.attrs[k]
    local d = { name = fstring(a.name), kind = KIND[tonumber(a.kind)], has_default = a.has_default ~= 0, enums = {} }
    for e = 0, a.nenums - 1 do d.enums[e + 1] = fstring(a.enums[e]) end
    info.attrs[k + 1] = d
  end
  return info
end

local VARIADIC, MAX_VARIADIC = D.MG_VARIADIC, 4096
local pack = function(...) return { n = select("#", ...), ... } end

-- The generic op function: inputs, then attributes positionally and/or as
-- one trailing table of options.
local function make_op(info)
  local op, name, nin = info.id, info.name, info.nin
  local variadic = bit.band(info.flags, VARIADIC) ~= 0
  local nattrs = #info.attrs
  if not variadic and nattrs == 0 and nin == 2 then   -- the hot binary ops: no packing
    return function(a, b, ...)
      if select("#", ...) > 0 then
        local err = read_attrs(pack(a, b, ...), 3, select("#", ...) + 2, info)
        if err then uerror(err, 2) end
      end
      local owned = {}
      inputs[0] = input(a, name, 1, owned, 2)
      inputs[1] = input(b, name, 2, owned, 2)
      return apply(op, 2, nil, owned, 1)   -- 1: a tail call, this function's frame is gone
    end
  elseif not variadic and nattrs == 0 and nin == 1 then
    return function(a, ...)
      if select("#", ...) > 0 then
        local err = read_attrs(pack(a, ...), 2, select("#", ...) + 1, info)
        if err then uerror(err, 2) end
      end
      local owned = {}
      inputs[0] = input(a, name, 1, owned, 2)
      return apply(op, 1, nil, owned, 1)   -- 1: a tail call, this function's frame is gone
    end
  end
  return function(...)
    local args = pack(...)
    local n, first, count = args.n, nin + 1, nin
    if variadic then
      local list = args[1]
      if type(list) ~= "table" then
        uerror(format("%s: argument #1 must be a table of tensors, got %s", name, typename(list)), 2)
      end
      count = #list
      if count > MAX_VARIADIC then uerror(format("%s: at most %d tensors", name, MAX_VARIADIC), 2) end
      first = 2
    end
    local err = read_attrs(args, first, n, info)
    if err then uerror(err, 2) end
    local owned = {}
    for i = 1, count do
      inputs[i - 1] = input(variadic and args[1][i] or args[i], name, i, owned, 2)
    end
    return apply(op, count, attrs, owned, 1)   -- 1: a tail call, this function's frame is gone
  end
end

local op_count = tonumber(lib.MG_OP_COUNT)
for op = 0, op_count - 1 do
  local info = describe(op)
  op_info[op], op_attrs[op] = info, info.attrs
  ops_list[op + 1] = info
  M[info.name] = make_op(info)
end

-- core.ops(): the op table as Lua data (as lua/capi/ops.c).
function M.ops()
  local FLAGS = { { D.MG_EW, "elementwise" }, { D.MG_BCAST, "broadcast" }, { D.MG_NOGRAD, "nograd" },
    { D.MG_VIEW, "view" }, { D.MG_CREATE, "create" }, { D.MG_RANDOM, "random" }, { D.MG_VARIADIC, "variadic" } }
  local out = {}
  for i, info in ipairs(ops_list) do
    local o = { name = info.name, nin = info.nin, doc = info.doc, attrs = {} }
    for _, f in ipairs(FLAGS) do o[f[2]] = bit.band(info.flags, f[1]) ~= 0 end
    for k, d in ipairs(info.attrs) do o.attrs[k] = { name = d.name, kind = d.kind, has_default = d.has_default } end
    out[i] = o
  end
  return out
end

-- ---- the tensor metatype ---------------------------------------------------------------------

local methods = {}
M.methods = methods
local OP = {}
for op = 0, op_count - 1 do OP[op_info[op].name] = op end

local function arith(op, a, b)
  local owned, name = {}, op_info[op].name
  inputs[0] = input(a, name, 1, owned, 2)
  if b ~= nil or op_info[op].nin == 2 then inputs[1] = input(b, name, 2, owned, 2) end
  return apply(op, op_info[op].nin, nil, owned, 1)   -- 1: the metamethod and this function were tail calls
end

local ADD, SUB, MUL, DIV, MOD, POW, NEG = OP.add, OP.sub, OP.mul, OP.div, OP.mod, OP.pow, OP.neg
local SELECT = OP.select

-- One-element operands only: Lua turns the result into a boolean.
local function compare_operand(v, a, b, opname)
  if type(v) == "number" then return v end
  local t = testtensor(v)
  if not t then uerror(format("attempt to compare %s with %s", typename(a), typename(b)), 3) end
  if lib.mg_tensor_is_freed(t) ~= 0 then uerror(format("%s: the tensor was freed", opname), 3) end
  if lib.mg_tensor_is_symbolic(t) ~= 0 then
    uerror(format("'%s' on a symbolic tensor while tracing a staged function would give a Lua boolean fixed at "
      .. "trace time; use mg.%s (elementwise, a tensor) or let AutoGraph convert the comparison", opname,
      opname == "<" and "less" or "less_equal"), 3)
  end
  if lib.mg_tensor_numel(t) ~= 1 then
    local s, shape = {}, lib.mg_tensor_shape(t)
    for i = 0, lib.mg_tensor_ndim(t) - 1 do s[i + 1] = tostring(tonumber(shape[i])) end
    uerror(format("'%s' compares one-element tensors only (got shape (%s)); use mg.%s for elementwise comparison",
      opname, table.concat(s, ","), opname == "<" and "less" or "less_equal"), 3)
  end
  return lib.mg_tensor_get_f64(t, 0)
end

local select_attrs = new("mg_attrs")
local function select_first_axis(t, i)
  if lib.mg_tensor_ndim(t) == 0 then uerror("index: cannot index a 0-d tensor (use t:item())", 3) end
  select_attrs.set = 3
  select_attrs.v[0].n, select_attrs.v[0].i[0] = 1, 1
  select_attrs.v[1].n, select_attrs.v[1].i[0] = 1, i
  inputs[0] = t
  return apply(SELECT, 1, select_attrs, nil, 3)
end

local function check_index_key(k)
  if type(k) ~= "number" or not is_int(k) then
    uerror(format("index: a tensor index must be an integer, got %s%s", typename(k),
      type(k) == "number" and " with a fraction" or ""), 3)
  end
  return k
end

local function shape_table(t)
  local s, shape = {}, lib.mg_tensor_shape(t)
  local sym = lib.mg_tensor_is_symbolic(t) ~= 0
  for i = 0, lib.mg_tensor_ndim(t) - 1 do s[i + 1] = sym and push_size(t, i + 1) or tonumber(shape[i]) end
  return s
end

local mt = {}
mt.__index = function(b, k)
  local t = b.h_
  if t == nil then uerror("bad argument #1 to '__index' (mg.Tensor expected, got mg.Tensor)", 2) end
  if type(k) == "string" then
    local m = rawget(methods, k)
    if m ~= nil then return m end
    if k == "shape" then return shape_table(t) end
    if k == "dtype" then return dtype_names[lib.mg_tensor_dtype(t)] end
    if k == "ndim" then return lib.mg_tensor_ndim(t) end
    local fields = rawget(methods, "__fields")
    local f = type(fields) == "table" and fields[k]
    if type(f) == "function" then return (f(b)) end
    return nil
  end
  if type(k) == "number" then return select_first_axis(t, check_index_key(k)) end
  uerror(format("index: cannot index a tensor with a %s", typename(k)), 2)
end
mt.__newindex = function(b, k, v)
  local t = b.h_
  if type(k) ~= "number" then uerror(format("index: cannot set field '%s' of a tensor", tostring(k)), 2) end
  if t == nil then uerror("bad argument #1 to '__newindex' (mg.Tensor expected, got mg.Tensor)", 2) end
  local i = check_index_key(k)
  local src, err = totensor(v, "assign", 3)
  if not src then uerror(err, 2) end
  local st = lib.mg_tensor_set_index(ctx, t, i, src)
  lib.mg_tensor_release(src)
  if st ~= 0 then raise(2) end
end
mt.__add = function(a, b) return arith(ADD, a, b) end
mt.__sub = function(a, b) return arith(SUB, a, b) end
mt.__mul = function(a, b) return arith(MUL, a, b) end
mt.__div = function(a, b) return arith(DIV, a, b) end
mt.__mod = function(a, b) return arith(MOD, a, b) end
mt.__pow = function(a, b) return arith(POW, a, b) end
mt.__unm = function(a) return arith(NEG, a) end
mt.__eq = function(a, b) return rawequal(a, b) end   -- identity, as for userdata
mt.__lt = function(a, b) return compare_operand(a, a, b, "<") < compare_operand(b, a, b, "<") end
mt.__le = function(a, b) return compare_operand(a, a, b, "<=") <= compare_operand(b, a, b, "<=") end
mt.__len = function(b)
  local t = b.h_
  if lib.mg_tensor_ndim(t) == 0 then uerror("length of a 0-d tensor (use t:item())", 2) end
  return push_size(t, 0)
end
-- ipairs(t): rows 1 to #t, as Lua 5.4's ipairs gives them through __index (lua/capi/tensor.c);
-- `for row in t` refuses with the same words.
mt.__ipairs = function(b)
  local t = b.h_
  if lib.mg_tensor_ndim(t) == 0 then uerror("index: cannot index a 0-d tensor (use t:item())", 2) end
  local n = push_size(t, 0)
  if type(n) ~= "number" then
    uerror("ipairs: the number of rows of a traced tensor is unknown while tracing (a -1 size of its input "
      .. "signature), so the loop would not end; use mg.while_loop", 2)
  end
  return function(_, i)
    i = i + 1
    if i <= n then return i, b[i] end
  end, b, 0
end
mt.__call = function()
  uerror("a tensor is not an iterator: `for row in t` does not loop over its rows; use `for i, row in ipairs(t)` "
    .. "(rows 1 to #t) or `for i = 1, #t do local row = t[i] ... end`", 2)
end
mt.__tostring = function(b)
  local t = b.h_
  if t == nil then return "tensor(<released>)" end
  if lib.mg_tensor_is_symbolic(t) ~= 0 then   -- no values: show what the trace knows
    local dims, shape = {}, lib.mg_tensor_shape(t)
    for i = 0, lib.mg_tensor_ndim(t) - 1 do
      local n = tonumber(shape[i])
      dims[i + 1] = tostring(n > 16777000 and -1 or n)
    end
    return format("tensor(<symbolic>, shape=(%s), dtype=%s)", table.concat(dims, ","),
      dtype_names[lib.mg_tensor_dtype(t)])
  end
  local s = lib.mg_tensor_format(t, 80)
  if s == nil then uerror("tostring: out of memory", 2) end
  local r = fstring(s)
  lib.mg_free(s)
  return r
end
Box = ffi.metatype("mgjit_box", mt)

-- When the state closes: every reference still held by a box.
debug.getregistry()["moongrad.ffi.anchor"] = ffi.gc(new("char[1]"), function()
  for slot = 1, next_unused - 1 do
    local h = handles[slot]
    if h ~= nil then
      handles[slot] = nil
      lib.mg_tensor_release(h)
    end
  end
end)

-- ---- C-side methods (lua/capi/tensor.c) ----------------------------------------------------

local function check_live(x, what, argn)
  local t = checktensor(x, argn or 1, what)
  if lib.mg_tensor_is_freed(t) ~= 0 then
    uerror(format("%s: the tensor was freed (t:free() or <close>)", what), 3)
  end
  if lib.mg_tensor_is_symbolic(t) ~= 0 then
    uerror(format("%s: a symbolic tensor has no value while a staged function is being traced (its value exists "
      .. "only when the graph runs; use mg.print to see it then)", what), 3)
  end
  return t
end

function methods.numel(x)
  local t = checktensor(x, 1, "numel")
  if lib.mg_tensor_is_symbolic(t) ~= 0 then   -- an unknown size makes the count unknown (lua/capi/dim.c)
    local shape = lib.mg_tensor_shape(t)
    for i = 0, lib.mg_tensor_ndim(t) - 1 do
      if lib.mg_size_is_unknown(shape[i]) ~= 0 then return push_size(t, -1) end
    end
  end
  return tonumber(lib.mg_tensor_numel(t))
end
function methods.totable(x) return totable(check_live(x, "totable")) end
function methods.item(x)
  local t = check_live(x, "item")
  local n = tonumber(lib.mg_tensor_numel(t))
  if n ~= 1 then uerror(format("item: the tensor has %d elements; item() needs exactly one", n), 2) end
  return element(t, lib.mg_tensor_dtype(t), 0)
end
function methods.free(x) lib.mg_tensor_free_storage(checktensor(x, 1, "free")) end
function methods.strides(x)
  local t = checktensor(x, 1, "strides")
  local s, st = {}, lib.mg_tensor_strides(t)
  for i = 0, lib.mg_tensor_ndim(t) - 1 do s[i + 1] = tonumber(st[i]) end
  return s
end
function methods.is_contiguous(x) return lib.mg_tensor_is_contiguous(checktensor(x, 1, "is_contiguous")) ~= 0 end
function methods.is_freed(x) return lib.mg_tensor_is_freed(checktensor(x, 1, "is_freed")) ~= 0 end
function methods.tobytes(x)
  local t = check_live(x, "tobytes")
  local n = tonumber(lib.mg_tensor_nbytes(t))
  local buf = new("char[?]", n > 0 and n or 1)
  if lib.mg_tensor_copy_to(t, buf, n) ~= 0 then uerror(last_error(), 2) end
  return fstring(buf, n)
end
function methods.shares_storage(x, y)
  local a, b = check_live(x, "shares_storage"), check_live(y, "shares_storage", 2)
  return lib.mg_tensor_data(a) ~= nil and lib.mg_tensor_nbytes(a) > 0 and lib.mg_tensor_nbytes(b) > 0 and
    lib.mg_tensor_storage_id(a) == lib.mg_tensor_storage_id(b)
end

-- ---- module functions (lua/capi/module.c) ---------------------------------------------------

local function parse_dtype(v)
  if v == nil then return nil end
  if type(v) ~= "string" then
    uerror(format("bad argument #2 to 'tensor' (string expected, got %s)", typename(v)), 3)
  end
  local id = dtype_ids[v]
  if not id then uerror(format("unknown dtype '%s' (float32, float64, int32, int64, uint8, bool)", v), 3) end
  return id
end

local cast_attrs = new("mg_attrs")
local reshape_attrs = new("mg_attrs")
local CAST, RESHAPE = OP.cast, OP.reshape

-- core.tensor(data [, dtype]): a nested table, a number, a boolean or a tensor (copied).
function M.tensor(data, dtype)
  local dt = parse_dtype(dtype)
  local has_dt = dt ~= nil
  local td = type(data)
  if td == "table" then
    local t, err = table_to_tensor(data, has_dt, dt or F32)
    if not t then uerror(err, 2) end
    return push(t, true)
  elseif td == "number" then
    if not has_dt then dt = is_int(data) and I64 or F32 end
    local t, err = table_to_tensor({ data }, true, dt)
    if not t then uerror(err, 2) end
    reshape_attrs.set = 1
    reshape_attrs.v[0].n = 0    -- 0-d: a view with no axes
    inputs[0] = t
    local st = lib.mg_apply(ctx, RESHAPE, inputs, 1, reshape_attrs, outp)
    lib.mg_tensor_release(t)
    if st ~= 0 then uerror(last_error(), 2) end
    return push(outp[0], true)
  elseif td == "boolean" then
    if not has_dt then dt = BOOL end
    if lib.mg_scalar_i64(data and 1 or 0, 0, scalar_out) ~= 0 then uerror(last_error(), 2) end
    local s = scalar_out[0]
    cast_attrs.set = 1
    cast_attrs.v[0].n, cast_attrs.v[0].i[0] = 1, dt
    inputs[0] = s
    local st = lib.mg_apply(ctx, CAST, inputs, 1, cast_attrs, outp)
    lib.mg_tensor_release(s)
    if st ~= 0 then uerror(last_error(), 2) end
    return push(outp[0], true)
  end
  local src = testtensor(data)
  if not src then
    uerror(format("tensor: expected a nested table, a number or a tensor, got %s", typename(data)), 2)
  end
  cast_attrs.set = 1
  cast_attrs.v[0].n, cast_attrs.v[0].i[0] = 1, has_dt and dt or lib.mg_tensor_dtype(src)
  inputs[0] = src
  if lib.mg_apply(ctx, CAST, inputs, 1, cast_attrs, outp) ~= 0 then uerror(last_error(), 2) end
  return push(outp[0], true)
end

-- core.frombytes(s, dtype, shape): a tensor holding a copy of the bytes of s.
function M.frombytes(s, dtype, shape)
  if type(s) ~= "string" then
    uerror(format("bad argument #1 to 'frombytes' (string expected, got %s)", typename(s)), 2)
  end
  local dt = dtype ~= nil and parse_dtype(dtype) or F32
  local len, ndim, n = #s, 0, 1
  if shape == nil then
    shape_buf[0] = floor(len / dtype_size[dt])
    ndim = 1
  else
    if type(shape) ~= "table" then
      uerror(format("bad argument #3 to 'frombytes' (table expected, got %s)", typename(shape)), 2)
    end
    ndim = #shape
    if ndim > MAX_DIMS then uerror(format("frombytes: at most %d dimensions", MAX_DIMS), 2) end
    for i = 1, ndim do
      local v = shape[i]
      if type(v) ~= "number" or not is_int(v) or v < 0 then
        uerror(format("frombytes: shape entry %d must be a non-negative integer", i), 2)
      end
      shape_buf[i - 1] = v
    end
  end
  for i = 0, ndim - 1 do n = n * tonumber(shape_buf[i]) end
  if n * dtype_size[dt] ~= len then
    uerror(format("frombytes: %d bytes do not make %d %s elements", len, n, dtype_names[dt]), 2)
  end
  if lib.mg_tensor_from_data(dt, ndim, shape_buf, s, outp) ~= 0 then uerror(last_error(), 2) end
  return push(outp[0], true)
end

function M.seed(n)
  if type(n) ~= "number" or not is_int(n) then
    uerror(format("bad argument #1 to 'seed' (number has no integer representation)"), 2)
  end
  lib.mg_ctx_seed(ctx, n)
end
-- rng_state() -> seed, counter (as numbers: exact below 2^53); set_rng_state(seed, counter).
function M.rng_state()
  local sp, cp = ffi.new("uint64_t[1]"), ffi.new("uint64_t[1]")
  lib.mg_ctx_rng_state(ctx, sp, cp)
  return tonumber(sp[0]), tonumber(cp[0])
end
function M.set_rng_state(seed, counter)
  if type(seed) ~= "number" or type(counter) ~= "number" then
    uerror("bad argument to 'set_rng_state' (expected two integers)", 2)
  end
  lib.mg_ctx_set_rng_state(ctx, seed, counter)
end
function M.set_num_threads(n)
  if type(n) ~= "number" or not is_int(n) then
    uerror("bad argument #1 to 'set_num_threads' (number has no integer representation)", 2)
  end
  if lib.mg_set_num_threads(n) ~= 0 then raise(2) end
  clear_daz()   -- its parallel region sets FTZ/DAZ on every thread, this one too
end
function M.get_num_threads() return lib.mg_get_num_threads() end
function M.max_threads() return lib.mg_max_threads() end
function M.config_info()
  local buf = new("char[1024]")
  lib.mg_config_info(buf, 1024)
  return fstring(buf)
end
function M.is_tensor(x) return testtensor(x) ~= nil end
function M.bytes_live() return tonumber(lib.mg_storage_bytes_live()) end

-- core.warn(text): false: no host takes the library's warnings here (moongrad.warnings writes
-- io.stderr).
function M.warn() return false end
local ts = new("struct mgjit_timespec")
function M.clock()   -- monotonic wall time in seconds
  C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- ---- autodiff (lua/capi/autodiff.c) -------------------------------------------------------------

local tape_methods = {}
M.tape_methods = tape_methods
local Tape = ffi.metatype("mgjit_tape", {
  __index = tape_methods,
  __gc = nojit(function(b)
    local t = b.t_
    if t ~= nil then
      b.t_ = nil
      lib.mg_tape_free(t)
    end
  end),
})

local function check_tape(x)
  if not istype(Tape, x) then
    uerror(format("bad argument #1 to 'GradientTape method' (mg.Tape expected, got %s)", typename(x)), 3)
  end
  if x.t_ == nil then uerror("GradientTape: the tape was released", 3) end
  return x.t_
end

function M.tape_new(persistent, watch)
  if watch == nil then watch = true end
  local t = lib.mg_tape_new(ctx, persistent and 1 or 0, watch and 1 or 0)
  if t == nil then uerror(last_error(), 2) end
  return Tape(t)
end

function tape_methods.start(x)
  if lib.mg_tape_start(check_tape(x)) ~= 0 then uerror(last_error(), 2) end
end
function tape_methods.stop(x) lib.mg_tape_stop(check_tape(x)) end
function tape_methods.recording(x) return lib.mg_tape_recording(check_tape(x)) ~= 0 end
function tape_methods.watch(x, v)
  local t = check_tape(x)
  local h = testtensor(v)
  if not h then uerror(format("watch: expected a tensor or Variable, got %s", typename(v)), 2) end
  if lib.mg_tape_watch(t, h) ~= 0 then uerror(last_error(), 2) end
end

-- A flat Lua list of tensors as a C array (NULL for holes when allow_nil).
local function read_list(list, allow_nil, what)
  local n = #list
  local v = new("mg_tensor *[?]", n > 0 and n or 1)
  for i = 1, n do
    local h = testtensor(list[i])
    if not h and not (allow_nil and list[i] == nil) then
      uerror(format("gradient: %s %d must be a tensor or Variable, got %s", what, i, typename(list[i])), 3)
    end
    v[i - 1] = h
  end
  return v, n
end

-- tape:_gradient(targets, output_grads|nil, sources, unconnected_zero [, keep])
tape_methods._gradient = nojit(function(x, targets, ograds, sources, zero, keep)
  local tape = check_tape(x)
  if type(targets) ~= "table" then uerror("bad argument #2 to '_gradient' (table expected)", 2) end
  if type(sources) ~= "table" then uerror("bad argument #4 to '_gradient' (table expected)", 2) end
  local tv, nt = read_list(targets, false, "target")
  local gv, ng = nil, 0
  if ograds ~= nil then gv, ng = read_list(ograds, true, "output gradient") end
  local sv, ns = read_list(sources, false, "source")
  if gv and ng ~= nt then uerror(format("gradient: %d output_gradients for %d targets", ng, nt), 2) end
  local grads = new("mg_tensor *[?]", ns > 0 and ns or 1)
  local was = keep and lib.mg_tape_set_persistent(tape, 1) or -1
  local st = lib.mg_tape_gradient(tape, nt, tv, gv, ns, sv, zero and 1 or 0, grads)
  if was >= 0 then lib.mg_tape_set_persistent(tape, was) end
  if st ~= 0 then raise(2) end
  local out = { n = ns }
  for i = 0, ns - 1 do
    if grads[i] ~= nil then out[i + 1] = push(grads[i], true) end
  end
  return out
end)

-- Lua functions called from C (custom backward, graph host functions) live
-- in `callbacks` under an integer id passed as the C side's ud.
local callbacks, next_id = {}, 0
local function keep_callback(fn)
  next_id = next_id + 1
  callbacks[next_id] = fn
  return next_id
end
local kept_of = {}   -- id -> the values kept for a group record (lua/capi: an mg.Kept box)
local host_labels = {}   -- id -> a lua_function's name in errors
local free_cb = ffi.cast("void (*)(void *)", function(ud)
  local id = tonumber(ffi.cast("intptr_t", ud))
  callbacks[id] = nil
  host_labels[id] = nil
  local kept = kept_of[id]
  if kept then   -- let go of them with the record (their boxes wait for the collector)
    kept_of[id] = nil
    for i = 1, kept.n do kept[i] = nil end
    kept.released = true
  end
end)

local function pcall_results(ok, ...)
  return ok, select("#", ...), { ... }
end

-- mg_backward_fn: calls backward(grad_output) -> grads (one per input, or a list).
local backward_cb = ffi.cast("mg_backward_fn", function(ud, gout, nin, gin)
  local fn = callbacks[tonumber(ffi.cast("intptr_t", ud))]
  lib.mg_tensor_retain(gout)
  local ok, nres, res = pcall_results(pcall(fn, push(gout, false)))
  if not ok then
    lib.mg_seterror(1, "%s", tostring(res[1]))
    return 1
  end
  if nres == 1 and type(res[1]) == "table" and not testtensor(res[1]) then
    local list = res[1]
    res, nres = {}, #list
    for i = 1, nres do res[i] = list[i] end
  end
  for i = 1, nin do
    if i <= nres and res[i] ~= nil then
      local t, err = totensor(res[i], "custom_gradient", i)
      if not t then
        for j = 0, i - 2 do
          if gin[j] ~= nil then lib.mg_tensor_release(gin[j]); gin[j] = nil end
        end
        lib.mg_seterror(1, "%s", "custom_gradient: the backward function's result " .. i .. ": " .. err)
        return 1
      end
      gin[i - 1] = t
    end
  end
  return 0
end)

-- core.record_custom({inputs}, output, backward)
M.record_custom = nojit(function(list, output, backward)
  if type(list) ~= "table" then uerror("bad argument #1 to 'record_custom' (table expected)", 2) end
  local iv, nin = read_list(list, false, "input")
  local out = checktensor(output, 2, "record_custom")
  if type(backward) ~= "function" then uerror("bad argument #3 to 'record_custom' (function expected)", 2) end
  local id = keep_callback(backward)
  if lib.mg_tape_record_custom(ctx, nin, iv, out, backward_cb, ffi.cast("void *", id), free_cb) ~= 0 then
    uerror(last_error(), 2)
  end
end)

-- mg_backward_group_fn: calls backward({grad_outputs, n=}, {need...}) -> a
-- list of gradients, one per input (nil where none or not needed).
local group_cb = ffi.cast("mg_backward_group_fn", function(ud, nout, gouts, nin, need, gin)
  local fn = callbacks[tonumber(ffi.cast("intptr_t", ud))]
  local list, needs = { n = nout }, {}
  for k = 0, nout - 1 do
    if gouts[k] ~= nil then
      lib.mg_tensor_retain(gouts[k])
      list[k + 1] = push(gouts[k], false)
    end
  end
  for i = 0, nin - 1 do needs[i + 1] = need[i] ~= 0 end
  local ok, res = pcall(fn, list, needs)
  if ok and type(res) ~= "table" then
    ok, res = false, "gradient: a cond/while backward returned " .. typename(res) .. ", not a list"
  end
  if ok then
    for i = 1, nin do
      local v = res[i]
      if v ~= nil and need[i - 1] ~= 0 then
        local t, err = totensor(v, "gradient", i)
        if not t then ok, res = false, "gradient: a cond/while backward's result " .. i .. ": " .. tostring(err); break end
        gin[i - 1] = t
      end
    end
  end
  if not ok then
    for i = 0, nin - 1 do
      if gin[i] ~= nil then lib.mg_tensor_release(gin[i]); gin[i] = nil end
    end
    lib.mg_seterror(1, "%s", tostring(res))
    return 1
  end
  return 0
end)

-- core.record_group({inputs}, {outputs}, backward [, kept])
M.record_group = nojit(function(ins, outs, backward, kept)
  if type(ins) ~= "table" then uerror("bad argument #1 to 'record_group' (table expected, got " .. typename(ins) .. ")", 2) end
  if type(outs) ~= "table" then uerror("bad argument #2 to 'record_group' (table expected, got " .. typename(outs) .. ")", 2) end
  if type(backward) ~= "function" then
    uerror("bad argument #3 to 'record_group' (function expected, got " .. typename(backward) .. ")", 2)
  end
  local iv, nin = read_list(ins, false, "input")
  local ov, nout = read_list(outs, false, "output")
  local id = keep_callback(backward)
  kept_of[id] = kept
  if lib.mg_tape_record_group(ctx, nin, iv, nout, ov, group_cb, ffi.cast("void *", id), free_cb) ~= 0 then
    uerror(last_error(), 2)
  end
end)

function M.variable(init, trainable)
  local t, err = totensor(init, "Variable", 1)
  if not t then uerror(err, 2) end
  local st = lib.mg_variable_new(ctx, t, (trainable == nil or trainable) and 1 or 0, outp)
  lib.mg_tensor_release(t)
  if st ~= 0 then uerror(last_error(), 2) end
  return push(outp[0], true)
end

function M.assign(v, x)
  local h = checktensor(v, 1, "assign")
  if lib.mg_tensor_is_variable(h) == 0 then uerror("assign: the target is not a Variable", 2) end
  local t, err = totensor(x, "assign", 2)
  if not t then uerror(err, 2) end
  local st = lib.mg_variable_assign(ctx, h, t)
  lib.mg_tensor_release(t)
  if st ~= 0 then uerror(last_error(), 2) end
  return v
end

function M.variable_read(v)
  local h = checktensor(v, 1, "variable_read")
  if lib.mg_variable_read(h, outp) ~= 0 then uerror(last_error(), 2) end
  return push(outp[0], false)
end

function M.variable_writes() return tonumber(lib.mg_variable_writes()) end

function M.variable_version(v)
  local h = checktensor(v, 1, "variable_version")
  if lib.mg_tensor_is_variable(h) == 0 then uerror("variable_version: not a Variable", 2) end
  return tonumber(lib.mg_variable_version(h))
end

function M.is_variable(x)
  local h = testtensor(x)
  return h ~= nil and lib.mg_tensor_is_variable(h) ~= 0
end

function M.is_trainable(x)
  local h = checktensor(x, 1, "is_trainable")
  return lib.mg_tensor_is_variable(h) ~= 0 and lib.mg_variable_trainable(h) ~= 0
end

function M.pause_tapes(on) lib.mg_ctx_pause_tapes(ctx, on and 1 or 0) end

-- core.tensor_key(t) -> a value equal for the Lua handles of one engine tensor.
function M.tensor_key(t)
  local p = testtensor(t)
  if p == nil then uerror("bad argument #1 to 'tensor_key' (tensor expected, got " .. typename(t) .. ")", 2) end
  return tonumber(ffi.cast("intptr_t", p))
end

-- core.tapes_track({tensors}, ...) -> whether a tape recording at this trace
-- depth tracks one of the list's or the other arguments' tensors.
local track_one = new("mg_tensor *[1]")
function M.tapes_track(list, ...)
  if type(list) == "table" then
    for j = 1, #list do
      track_one[0] = testtensor(list[j])
      if track_one[0] ~= nil and lib.mg_tapes_track_any(ctx, 1, track_one) ~= 0 then return true end
    end
  end
  for i = 1, select("#", ...) do
    track_one[0] = testtensor((select(i, ...)))
    if track_one[0] ~= nil and lib.mg_tapes_track_any(ctx, 1, track_one) ~= 0 then return true end
  end
  return false
end

-- ---- staging (lua/capi/graph.c) -------------------------------------------------------------------

local graph_methods = {}
local Graph = ffi.metatype("mgjit_graph", {
  __index = graph_methods,
  __gc = nojit(function(b)
    local g = b.g_
    if g ~= nil then
      b.g_ = nil
      lib.mg_graph_release(g)
    end
  end),
})

local function check_graph(x, argn)
  if not istype(Graph, x) then
    uerror(format("bad argument #%d (mg.Graph expected, got %s)", argn or 1, typename(x)), 3)
  end
  if x.g_ == nil then uerror("graph: released", 3) end
  return x.g_
end

local function tensor_list(list, what)
  if type(list) ~= "table" then uerror(format("%s: expected a table of tensors, got %s", what, typename(list)), 3) end
  local n = #list
  local v = new("mg_tensor *[?]", n > 0 and n or 1)
  for i = 1, n do
    local h = testtensor(list[i])
    if not h then uerror(format("%s: value %d must be a tensor, got %s", what, i, typename(list[i])), 3) end
    v[i - 1] = h
  end
  return v, n
end

local function push_list(v, n, fresh)
  local out = { n = n }
  for i = 0, n - 1 do out[i + 1] = push(v[i], fresh) end
  return out
end

local gout = new("mg_graph *[1]")
function M.trace_begin(name)
  if lib.mg_trace_begin(ctx, name or "function", gout) ~= 0 then uerror(last_error(), 2) end
  return Graph(gout[0])
end
M.trace_end = nojit(function(g, outs)
  local h = check_graph(g, 1)
  local v, n = tensor_list(outs, "trace")
  if lib.mg_trace_end(ctx, h, n, v) ~= 0 then uerror(last_error(), 2) end
end)
M.trace_abort = nojit(function() lib.mg_trace_abort(ctx) end)
function M.tracing() return lib.mg_tracing(ctx) ~= 0 end
function M.is_symbolic(x)
  local h = testtensor(x)
  return h ~= nil and lib.mg_tensor_is_symbolic(h) ~= 0
end

local function read_shape(s, buf)
  if type(s) ~= "table" then uerror(format("shape: expected a table, got %s", typename(s)), 3) end
  local n = #s
  if n > MAX_DIMS then uerror(format("shape: at most %d dimensions", MAX_DIMS), 3) end
  for d = 1, n do
    local v = tosize(s[d])   -- an unknown size passes its probe
    if not v or v < -1 then
      uerror(format("shape: entry %d must be a size or -1 (unknown)", d), 3)
    end
    buf[d - 1] = v
  end
  return n
end

local function check_dtype(v)
  local id = type(v) == "string" and dtype_ids[v]
  if not id then uerror(format("unknown dtype '%s'", tostring(v)), 3) end
  return id
end

function M.placeholder(dtype, shape)
  local dt = check_dtype(dtype)
  local n = read_shape(shape, shape_buf)
  if lib.mg_trace_placeholder(ctx, dt, n, shape_buf, outp) ~= 0 then uerror(last_error(), 2) end
  return push(outp[0], false)
end

M.graph_run = nojit(function(g, ins)
  local h = check_graph(g, 1)
  local nout = lib.mg_graph_noutputs(h)
  local v, n = tensor_list(ins, "call")
  local out = new("mg_tensor *[?]", nout > 0 and nout or 1)
  if lib.mg_graph_run(ctx, h, n, v, nout, out) ~= 0 then uerror(last_error(), 2) end
  return push_list(out, nout, true)
end)

-- core.graph_call(graph, t1, t2, ...) -> o1, o2, ...: mg.func's fast path.
M.graph_call = nojit(function(g, ...)
  local h = check_graph(g, 1)
  local n, nout = select("#", ...), lib.mg_graph_noutputs(h)
  local ins, outs = new("mg_tensor *[?]", n > 0 and n or 1), new("mg_tensor *[?]", nout > 0 and nout or 1)
  for i = 1, n do
    local v = select(i, ...)
    local t = testtensor(v)
    if not t then uerror(format("call: argument %d must be a tensor, got %s", i, typename(v)), 2) end
    ins[i - 1] = t
  end
  local st = lib.mg_graph_run(ctx, h, n, ins, nout, outs)   -- fresh arrays: Lua nodes may call graphs
  if st ~= 0 then uerror(last_error(), 2) end
  local res = {}
  for k = 0, nout - 1 do res[k + 1] = push(outs[k], true) end
  return unpack(res, 1, nout)
end)

-- core.graph_call_keep(graph, nret, {src}, t1, ...) -> o1 .. o_nret, kept and
-- core.graph_call_kept(graph, kept, t1, ...) -> outputs (lua/capi/graph.c):
-- kept is a list here, emptied when the tape drops the record.
function M.graph_call_keep(g, nret, src, ...)
  local n = select("#", ...)
  local outs = { M.graph_call(g, ...) }
  local kept = { n = #src }
  for k, j in ipairs(src) do
    if j <= n then kept[k] = (select(j, ...)) else kept[k] = outs[j - n] end
    if kept[k] == nil then uerror(format("call: kept value %d names %d, out of range", k, j), 2) end
  end
  outs[nret + 1] = kept
  return unpack(outs, 1, nret + 1)
end
function M.graph_call_kept(g, kept, ...)
  if kept.released then uerror("call: the values kept for this gradient were released", 2) end
  local args = { unpack(kept, 1, kept.n) }
  local n = select("#", ...)
  for i = 1, n do args[kept.n + i] = (select(i, ...)) end
  return M.graph_call(g, unpack(args, 1, kept.n + n))
end

-- core.graph_select(graph, {k, ...}) -> graph (lua/capi/graph.c).
local select_out = new("mg_graph *[1]")
M.graph_select = nojit(function(g, which)
  local h = check_graph(g, 1)
  local n = #which
  local w = new("int[?]", n > 0 and n or 1)
  for k = 1, n do w[k - 1] = which[k] - 1 end
  if lib.mg_graph_select_outputs(h, n, w, select_out) ~= 0 then uerror(last_error(), 2) end
  return Graph(select_out[0])
end)

-- core.graph_accepts(graph, t1, ...) -> whether the tensors fit the placeholders.
local meta_dt, meta_nd, meta_shape = new("mg_dtype[1]"), new("int[1]"), new("int64_t[?]", MAX_DIMS)
function M.graph_accepts(g, ...)
  local h = check_graph(g, 1)
  local n = select("#", ...)
  if n ~= lib.mg_graph_ninputs(h) then return false end
  for i = 1, n do
    local t = testtensor((select(i, ...)))
    lib.mg_graph_input_meta(h, i - 1, meta_dt, meta_nd, meta_shape)
    local nd = meta_nd[0]
    if not t or lib.mg_tensor_is_symbolic(t) ~= 0 or lib.mg_tensor_dtype(t) ~= tonumber(meta_dt[0]) or
       lib.mg_tensor_ndim(t) ~= nd then
      return false
    end
    local shape = lib.mg_tensor_shape(t)
    for d = 0, nd - 1 do
      if meta_shape[d] >= 0 and meta_shape[d] ~= shape[d] then return false end
    end
  end
  return true
end

-- core.graph_call_or(graph, fallback, self, t1, ...): graph_call when the
-- tensors fit the placeholders and no tape records, else fallback(self, t1,
-- ...) (a staged function's usual call).
function M.graph_call_or(g, fallback, self, ...)
  if lib.mg_tapes_active(ctx) == 0 and M.graph_accepts(g, ...) then return M.graph_call(g, ...) end
  return fallback(self, ...)
end

-- core.graph_split(graph, nfwd_in, nfwd_out) -> forward, backward, {src}
-- (lua/capi/graph.c).
local split_f, split_b, split_n, split_src = new("mg_graph *[1]"), new("mg_graph *[1]"), new("int[1]"), new("int *[1]")
M.graph_split = nojit(function(g, nin, nout)
  local h = check_graph(g, 1)
  if lib.mg_graph_split(h, nin, nout, split_f, split_b, split_n, split_src) ~= 0 then uerror(last_error(), 2) end
  local src = {}
  for k = 0, split_n[0] - 1 do src[k + 1] = split_src[0][k] + 1 end
  lib.mg_free(split_src[0])
  return Graph(split_f[0]), Graph(split_b[0]), src
end)

-- core.graph_externals({extra} | nil, g, ...) -> {tensors}, tracked, effect:
-- the outer tensors the finished subgraphs use (captures, Variables read),
-- each once; whether a tape recording at this trace depth tracks one of them
-- or of `extra`; what the subgraphs do besides computing (or nil).
function M.graph_externals(extra, ...)
  local all, seen, effect = {}, {}, nil
  for i = 1, select("#", ...) do
    local h = check_graph((select(i, ...)), i + 1)
    if not effect then
      local e = lib.mg_graph_effect(h)
      if e ~= nil then effect = ffi.string(e) end
    end
    local k = lib.mg_graph_externals(h, 0, nil)
    if k > 0 then
      local part = new("mg_tensor *[?]", k)
      k = lib.mg_graph_externals(h, k, part)  -- the sizing call counted repeats
      for j = 0, k - 1 do
        local key = tonumber(ffi.cast("intptr_t", part[j]))
        if not seen[key] then seen[key] = true; all[#all + 1] = part[j] end
      end
    end
  end
  local m = #all
  local arr, res = new("mg_tensor *[?]", m > 0 and m or 1), { n = m }
  for j = 1, m do
    arr[j - 1] = all[j]
    lib.mg_tensor_retain(all[j])
    res[j] = push(all[j], false)
  end
  local any = lib.mg_tapes_track_any(ctx, m, arr) ~= 0
  if type(extra) == "table" then
    local one = new("mg_tensor *[1]")
    for j = 1, #extra do
      if any then break end
      one[0] = testtensor(extra[j])
      if one[0] ~= nil then any = lib.mg_tapes_track_any(ctx, 1, one) ~= 0 end
    end
  end
  return res, any, effect
end

-- core.pass_names() -> {"constfold", "cse", ...}: the optimisation passes, in order.
function M.pass_names()
  local out = {}
  for i = 0, D.MG_NPASSES - 1 do out[i + 1] = fstring(lib.mg_pass_name(i)) end
  return out
end

-- core.graph_optimize(graph [, passes]) -> {constfold=n, cse=n, ...}: passes
-- is an integer mask, or a table switching passes off ({fuse=false}).
M.graph_optimize = nojit(function(g, passes)
  local h = check_graph(g, 1)
  local npasses = D.MG_NPASSES
  local mask = D.MG_PASS_ALL
  if type(passes) == "number" and is_int(passes) then
    mask = passes
  elseif type(passes) == "table" then
    for i = 0, npasses - 1 do
      if passes[fstring(lib.mg_pass_name(i))] == false then mask = bit.band(mask, bit.bnot(bit.lshift(1, i))) end
    end
  elseif passes ~= nil then
    uerror("optimize: passes must be nil, an integer or a table like {fuse=false}", 2)
  end
  local counts = new("int[?]", npasses)
  if lib.mg_graph_optimize_counts(ctx, h, mask, counts) ~= 0 then uerror(last_error(), 2) end
  local out = {}
  for i = 0, npasses - 1 do out[fstring(lib.mg_pass_name(i))] = counts[i] end
  return out
end)

M.trace_cond = nojit(function(pred, a, b)
  local p = checktensor(pred, 1, "trace_cond")
  local ga, gb = check_graph(a, 2), check_graph(b, 3)
  local nout = lib.mg_graph_noutputs(ga)
  local out = new("mg_tensor *[?]", nout > 0 and nout or 1)
  if lib.mg_trace_cond(ctx, p, ga, gb, nout, out) ~= 0 then uerror(last_error(), 2) end
  return push_list(out, nout, false)
end)

-- core.trace_while(cond_graph, body_graph, {init}, max_iterations [, save]) -> {outputs}
-- save: also the per-iteration stacks and the trip count, for the gradient
-- (2n+1 outputs, mg_trace_while_save).
M.trace_while = nojit(function(c, b, init, max_iter, save)
  local gc, gb = check_graph(c, 1), check_graph(b, 2)
  local v, n = tensor_list(init, "while_loop")
  local nout = save and 2 * n + 1 or n
  local out = new("mg_tensor *[?]", nout > 0 and nout or 1)
  local run = save and lib.mg_trace_while_save or lib.mg_trace_while
  if run(ctx, gc, gb, n, v, max_iter or -1, out) ~= 0 then uerror(last_error(), 2) end
  return push_list(out, nout, false)
end)

-- mg_host_fn: a Lua function inside a graph; results become new tensors.
local host_cb = ffi.cast("mg_host_fn", function(ud, nin, ins, nout, outs)
  local fn = callbacks[tonumber(ffi.cast("intptr_t", ud))]
  local args = {}
  for i = 0, nin - 1 do
    lib.mg_tensor_retain(ins[i])
    args[i + 1] = push(ins[i], false)
  end
  local ok, nres, res = pcall_results(pcall(fn, unpack(args, 1, nin)))
  if ok and nres ~= nout then   -- as lua/capi/graph.c words it
    ok, res = false, { format("lua_function: %s returned %d value%s, but %d %s declared (out_types)",
      host_labels[tonumber(ffi.cast("intptr_t", ud))], nres, nres == 1 and "" or "s", nout,
      nout == 1 and "was" or "were") }
  end
  if ok then
    for k = 1, nout do
      local t, err = totensor(res[k], "lua_function", k)
      if not t then
        ok, res = false, { "lua_function: result " .. k .. ": " .. err }
        break
      end
      outs[k - 1] = t
    end
  end
  if not ok then
    for k = 0, nout - 1 do
      if outs[k] ~= nil then lib.mg_tensor_release(outs[k]); outs[k] = nil end
    end
    lib.mg_seterror(1, "%s", tostring(res[1]))
    return 1
  end
  return 0
end)

-- core.call_host(fn, {inputs}, {{dtype=, shape=} | dtype ...} [, label]) -> {outputs}: label names
-- fn in the errors of its results' checks.
M.call_host = nojit(function(fn, ins, specs, label)
  if type(fn) ~= "function" then uerror("bad argument #1 to 'call_host' (function expected)", 2) end
  local v, nin = tensor_list(ins, "lua_function")
  if type(specs) ~= "table" then uerror("bad argument #3 to 'call_host' (table expected)", 2) end
  local nout = #specs
  if nout > 64 then uerror("lua_function: at most 64 results", 2) end
  local dts, ndims = new("mg_dtype[?]", 64), new("int[?]", 64)
  local shapes = new("int64_t[64][" .. MAX_DIMS .. "]")
  for k = 1, nout do
    local spec = specs[k]
    if type(spec) == "string" then
      dts[k - 1], ndims[k - 1] = check_dtype(spec), 0
    else
      if type(spec) ~= "table" then uerror(format("lua_function: result spec %d must be a table", k), 2) end
      dts[k - 1] = check_dtype(spec.dtype)
      ndims[k - 1] = spec.shape == nil and 0 or read_shape(spec.shape, shapes[k - 1])
    end
  end
  if label ~= nil and type(label) ~= "string" then
    uerror(format("bad argument #4 to 'call_host' (string expected, got %s)", typename(label)), 2)
  end
  label = label and label:sub(1, 255) or "the Lua function"
  local id = keep_callback(fn)
  host_labels[id] = label
  local out = new("mg_tensor *[?]", nout > 0 and nout or 1)
  local st = lib.mg_call_host(ctx, label, host_cb, ffi.cast("void *", id), free_cb, nin, v, nout, dts, ndims,
    ffi.cast("const int64_t (*)[" .. MAX_DIMS .. "]", shapes), out)
  if st ~= 0 then uerror(last_error(), 2) end
  return push_list(out, nout, true)
end)

function M.read_variable(v)
  local h = checktensor(v, 1, "read_variable")
  if lib.mg_tensor_is_variable(h) == 0 then uerror("read: not a Variable", 2) end
  if lib.mg_trace_read_variable(ctx, h, outp) ~= 0 then uerror(last_error(), 2) end
  return push(outp[0], false)
end

local function meta_table(dt, nd, shape)
  local s = {}
  for d = 0, nd - 1 do s[d + 1] = tonumber(shape[d]) end
  return { dtype = dtype_names[dt], shape = s }
end

function graph_methods.signature(g)
  local h = check_graph(g, 1)
  local dt, nd, shape = new("mg_dtype[1]"), new("int[1]"), new("int64_t[?]", MAX_DIMS)
  local sig = { inputs = {}, outputs = {} }
  for k = 0, lib.mg_graph_ninputs(h) - 1 do
    lib.mg_graph_input_meta(h, k, dt, nd, shape)
    sig.inputs[k + 1] = meta_table(tonumber(dt[0]), nd[0], shape)
  end
  for k = 0, lib.mg_graph_noutputs(h) - 1 do
    lib.mg_graph_output_meta(h, k, dt, nd, shape)
    sig.outputs[k + 1] = meta_table(tonumber(dt[0]), nd[0], shape)
  end
  return sig
end

function graph_methods.nodes(g)
  local h = check_graph(g, 1)
  local info = new("mg_node_info")
  local out = {}
  for i = 0, lib.mg_graph_nnodes(h) - 1 do
    if lib.mg_graph_node(h, i, info) ~= 0 and fstring(info.kind) ~= "dead" then
      local node = { kind = fstring(info.kind), op = fstring(info.op), inputs = {}, outputs = {} }
      for j = 0, info.nin - 1 do node.inputs[j + 1] = info["in"][j] end
      for j = 0, info.nout - 1 do node.outputs[j + 1] = info.out0 + j end
      out[#out + 1] = node
    end
  end
  return out
end

local function text(s)
  if s == nil then uerror("graph: out of memory", 3) end
  local r = fstring(s)
  lib.mg_free(s)
  return r
end
function graph_methods.pretty(g) return text(lib.mg_graph_pretty(check_graph(g, 1))) end
function graph_methods.to_dot(g, name) return text(lib.mg_graph_to_dot(check_graph(g, 1), name)) end


-- ---- files: safetensors and atomic writes (as lua/capi/io.c) ----------------------

-- names, tensors, metadata, file dtypes of a parsed file (freed here).
local function push_tensorfile(f)
  local names, list, meta, dtypes = {}, {}, {}, {}
  for i = 0, lib.mg_tensorfile_count(f) - 1 do
    names[i + 1] = fstring(lib.mg_tensorfile_name(f, i))
    local t = lib.mg_tensorfile_tensor(f, i)
    lib.mg_tensor_retain(t)
    list[i + 1] = push(t, true)
    dtypes[i + 1] = fstring(lib.mg_tensorfile_dtype(f, i))
  end
  for i = 0, lib.mg_tensorfile_nmeta(f) - 1 do
    meta[fstring(lib.mg_tensorfile_meta_key(f, i))] = fstring(lib.mg_tensorfile_meta_value(f, i))
  end
  lib.mg_tensorfile_free(f)
  return names, list, meta, dtypes
end

local function check_string(v, argn, fname)
  if type(v) ~= "string" then
    uerror(format("bad argument #%d to '%s' (string expected, got %s)", argn, fname, typename(v)), 3)
  end
  return v
end

function M.safetensors_load(path)
  check_string(path, 1, "safetensors_load")
  local fp = new("mg_tensorfile *[1]")
  if lib.mg_safetensors_load(path, fp) ~= 0 then uerror("mg." .. last_error(), 2) end
  return push_tensorfile(fp[0])
end

function M.safetensors_parse(s, what)
  check_string(s, 1, "safetensors_parse")
  local fp = new("mg_tensorfile *[1]")
  if lib.mg_safetensors_parse(s, #s, what or "<string>", fp) ~= 0 then uerror(last_error(), 2) end
  return push_tensorfile(fp[0])
end

-- A const char *[n] over the strings of list (kept alive by the list).
local function string_array(list, n, what)
  local a = new("const char *[?]", n + 1)
  for i = 1, n do
    local v = list[i]
    if type(v) ~= "string" then uerror(format("mg.save: %s %d must be a string, got %s", what, i, typename(v)), 3) end
    a[i - 1] = v
  end
  return a
end

function M.safetensors_save(path, names, tensors, keys, vals)
  check_string(path, 1, "safetensors_save")
  if type(names) ~= "table" or type(tensors) ~= "table" then
    uerror("bad argument to 'safetensors_save' (tables of names and tensors expected)", 2)
  end
  local n, nm = #names, keys and #keys or 0
  if #tensors ~= n then uerror(format("mg.save: %d names but %d tensors", n, #tensors), 2) end
  if nm > 0 and (type(vals) ~= "table" or #vals ~= nm) then
    uerror("mg.save: metadata keys and values differ in number", 2)
  end
  local na = string_array(names, n, "name")
  local ka, va = string_array(keys or {}, nm, "metadata key"), string_array(vals or {}, nm, "metadata value")
  local ta = new("mg_tensor *[?]", n + 1)
  for i = 1, n do
    local h = testtensor(tensors[i])
    if not h then uerror(format("mg.save: '%s' must be a tensor, got %s", names[i], typename(tensors[i])), 2) end
    ta[i - 1] = h
  end
  if lib.mg_safetensors_save(path, n, na, ta, nm, ka, va) ~= 0 then uerror("mg." .. last_error(), 2) end
end

function M.write_file_atomic(path, s)
  check_string(path, 1, "write_file_atomic")
  check_string(s, 2, "write_file_atomic")
  if lib.mg_write_file_atomic(path, s, #s) ~= 0 then uerror("mg.io." .. last_error(), 2) end
end

function M.read_file(path)
  check_string(path, 1, "read_file")
  local bp, lp = new("uint8_t *[1]"), new("size_t[1]")
  if lib.mg_read_file(path, bp, lp) ~= 0 then uerror("mg.io." .. last_error(), 2) end
  local s = fstring(bp[0], lp[0])
  lib.mg_free(bp[0])
  return s
end

function M.read_file_gunzip(path)
  check_string(path, 1, "read_file_gunzip")
  local bp, lp = new("uint8_t *[1]"), new("size_t[1]")
  if lib.mg_read_file_gunzip(path, bp, lp) ~= 0 then uerror(last_error(), 2) end
  local s = fstring(bp[0], lp[0])
  lib.mg_free(bp[0])
  return s
end

function M.isatty(fd)
  if type(fd) ~= "number" or not is_int(fd) then
    uerror("bad argument #1 to 'isatty' (number has no integer representation)", 2)
  end
  return lib.mg_isatty(fd) ~= 0
end

-- ---- paths and directories (as lua/capi/io.c, over core/fs.c) ----------------------

-- core.json_decode(text): as lua/capi/io.c, walking the engine's parse tree.
local function json_value(n)
  local ty = lib.mg_json_type(n)
  if ty == lib.MG_JSON_FALSE then return false
  elseif ty == lib.MG_JSON_TRUE then return true
  elseif ty == lib.MG_JSON_NUMBER then return lib.mg_json_number(n)
  elseif ty == lib.MG_JSON_STRING then return fstring(lib.mg_json_string(n))
  elseif ty == lib.MG_JSON_ARRAY or ty == lib.MG_JSON_OBJECT then
    local t, i, c = {}, 0, lib.mg_json_child(n)
    while c ~= nil do
      i = i + 1
      if lib.mg_json_type(c) ~= lib.MG_JSON_NULL then
        if ty == lib.MG_JSON_ARRAY then t[i] = json_value(c) else t[fstring(lib.mg_json_key(c))] = json_value(c) end
      end
      c = lib.mg_json_next(c)
    end
    return t
  end
  return nil
end
function M.json_decode(text)
  check_string(text, 1, "json_decode")
  local rp = new("mg_json *[1]")
  if lib.mg_json_parse(text, #text, rp) ~= 0 then uerror(last_error(), 2) end
  local ok, v = pcall(json_value, rp[0])
  lib.mg_json_free(rp[0])
  if not ok then error(v, 0) end
  return v
end

function M.process_id() return tonumber(lib.mg_process_id()) end
function M.process_alive(pid)
  if type(pid) ~= "number" or not is_int(pid) then
    uerror("bad argument #1 to 'process_alive' (number has no integer representation)", 2)
  end
  local a = lib.mg_process_alive(pid)
  if a < 0 then return nil end
  return a == 1
end

function M.path_exists(path) return lib.mg_path_exists(check_string(path, 1, "path_exists")) ~= 0 end
function M.path_isdir(path) return lib.mg_path_isdir(check_string(path, 1, "path_isdir")) ~= 0 end

function M.mkdir(path, parents)
  check_string(path, 1, "mkdir")
  if lib.mg_mkdir(path, parents and 1 or 0) ~= 0 then uerror("mg.io." .. last_error(), 2) end
end

function M.listdir(path)
  check_string(path, 1, "listdir")
  local bp, lp, np = new("char *[1]"), new("size_t[1]"), new("int[1]")
  if lib.mg_listdir(path, bp, lp, np) ~= 0 then uerror("mg.io." .. last_error(), 2) end
  local out, p = {}, bp[0]
  for i = 1, np[0] do
    local s = fstring(p)
    out[i] = s
    p = p + #s + 1
  end
  lib.mg_free(bp[0])
  return out
end

function M.remove(path)
  check_string(path, 1, "remove")
  if lib.mg_remove(path) ~= 0 then uerror("mg.io." .. last_error(), 2) end
end

function M.remove_tree(path)
  check_string(path, 1, "remove_tree")
  if lib.mg_remove_tree(path) ~= 0 then uerror("mg.io." .. last_error(), 2) end
end

function M.rename(from, to)
  check_string(from, 1, "rename")
  check_string(to, 2, "rename")
  if lib.mg_rename(from, to) ~= 0 then uerror("mg.io." .. last_error(), 2) end
end

return M
