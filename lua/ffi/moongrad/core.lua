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
-- This file holds the eager path (the library and context, boxes and the
-- collector, tables to tensors, op functions, the tensor metatype, module
-- functions); the tapes and staged graphs are in core_graph.lua and the files
-- and paths in core_files.lua, which it requires last and hands its internals
-- (`shared`, at the end). Only LuaJIT reaches those requires (Lua 5.4 leaves
-- on the next lines).
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
-- float16 and bfloat16 are stored as their 16 bits: mg_half_from_f64 / mg_half_to_f64 convert
local ctypes = { float32 = "float", float64 = "double", int32 = "int32_t", int64 = "int64_t", uint8 = "uint8_t",
  bool = "uint8_t", float16 = "uint16_t", bfloat16 = "uint16_t", int8 = "int8_t", int16 = "int16_t" }
for i = 0, lib.MG_NDTYPES - 1 do
  local name = fstring(lib.mg_dtype_name(i))
  dtype_names[i], dtype_ids[name] = name, i
  dtype_ctype[i] = ffi.typeof(ctypes[name] .. "*")
  dtype_size[i] = tonumber(lib.mg_dtype_size(i))
end
local F32, F64, I32, I64, U8, BOOL = dtype_ids.float32, dtype_ids.float64, dtype_ids.int32, dtype_ids.int64,
  dtype_ids.uint8, dtype_ids.bool
local F16, BF16, I8, I16 = dtype_ids.float16, dtype_ids.bfloat16, dtype_ids.int8, dtype_ids.int16
local HALF = { [F16] = true, [BF16] = true }

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

local INT_RANGE = { [I32] = { -2147483648, 2147483647 }, [I64] = { -2 ^ 63, 2 ^ 63 }, [U8] = { 0, 255 },
  [I8] = { -128, 127 }, [I16] = { -32768, 32767 } }

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
  if HALF[dt] then p[i] = lib.mg_half_from_f64(dt, v); return end   -- rounded once, to nearest even
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
  elseif tv == "boolean" then   -- a bool scalar, as tf.constant(True)
    if lib.mg_tensor_empty(BOOL, 0, nil, scalar_out) ~= 0 then return nil, last_error() end
    cast("uint8_t *", lib.mg_tensor_data(scalar_out[0]))[0] = v and 1 or 0
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
  local err = format("%s: argument #%d must be a tensor, a number, a boolean or a nested table, got %s", opname, argn,
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
  local isbool, is64, half = dt == BOOL, dt == I64, HALF[dt]
  local function rows(d)
    local out = {}
    for i = 1, dims[d] do
      if d == ndim then
        local v = buf[at]
        at = at + 1
        if isbool then out[i] = v ~= 0 elseif is64 then out[i] = tonumber(v)
        elseif half then out[i] = lib.mg_half_to_f64(dt, v) else out[i] = v end
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
      return format("%s: unknown dtype '%s' (float32, float64, float16, bfloat16, int8, int16, int32, int64, uint8, bool)", info.name, v)
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

-- t[key] and t[key] = v with a tensor key (a bool mask or an integer tensor of positions): the
-- stdlib's methods __getitem/__setitem (moongrad/indexing.lua), as the Lua 5.4 binding calls them.
local function tensor_key_hook(name)
  local f = rawget(methods, name)
  if type(f) ~= "function" then
    uerror('index: indexing with a tensor needs the moongrad stdlib (require "moongrad")', 3)
  end
  return f
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
  if testtensor(k) ~= nil then
    local r = tensor_key_hook("__getitem")(b, k)   -- not a tail call: the hook raises at level 4, the user's line
    return r
  end
  uerror(format("index: cannot index a tensor with a %s", typename(k)), 2)
end
mt.__newindex = function(b, k, v)
  local t = b.h_
  if type(k) ~= "number" and testtensor(k) ~= nil then
    tensor_key_hook("__setitem")(b, k, v)   -- not a tail call (see __index)
    return
  end
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
  if not id then uerror(format("unknown dtype '%s' (float32, float64, float16, bfloat16, int8, int16, int32, int64, uint8, bool)", v), 3) end
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

-- ---- the rest of the surface, in sibling files -------------------------------------------------------
-- core_graph.lua (autodiff and staging) and core_files.lua (files, paths, JSON) add their functions
-- to M. `shared` hands them the internals they use; each copies them into locals once, so their
-- functions reach them as upvalues, as if they were written here.

local shared = {
  ffi = ffi, bit = bit, lib = lib, ctx = ctx, D = D, MAX_DIMS = MAX_DIMS,
  dtype_ids = dtype_ids, dtype_names = dtype_names, shape_buf = shape_buf, outp = outp,
  nojit = nojit, is_int = is_int, last_error = last_error, uerror = uerror, raise = raise,
  push = push, testtensor = testtensor, checktensor = checktensor, typename = typename,
  totensor = totensor, tosize = tosize,
}
require("moongrad.core_graph")(M, shared)
require("moongrad.core_files")(M, shared)

return M
