/*
 * tensor.c — the tensor userdata: boxes, conversions between Lua values and
 * tensors, metamethods and the C-side methods.
 *
 * Every module function carries two upvalues: the mgL_state and the tensor
 * metatable, so recognising a tensor is a pointer comparison instead of a
 * registry lookup (the eager small-op path is a product benchmark). Tensor
 * bytes are reported to the collector as incremental GC steps sized to the
 * bytes allocated, so loops stay flat without collectgarbage().
 */
#include "capi.h"
#include "dim.h"
#include "half.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GC_REPORT_BYTES (64 * 1024)   /* batch small allocations into one step */
#define GC_TENSOR_BATCH 4096          /* new tensors per count-paced step: half of core/tensor.c's POOL_MAX */
#define GC_TENSOR_BATCH_MAX (1u << 22) /* ... at most, while tensors are kept rather than dropped */

/* Tells the collector about `nb` new buffer bytes it cannot see. Each 64 KiB
 * becomes GC debt, an incremental step sized to the bytes (in generational
 * mode, lua.c's default, a minor collection). Minor collections never free
 * old objects, and a tensor held in a variable across two allocations is old
 * by then; so, as the generational collector does for its own heap, a full
 * collection runs when the buffer bytes made since the last one exceed what
 * was alive after it (buffers plus the Lua heap, at least 4 MiB). Its cost,
 * one traversal of the Lua heap, is thus bounded per byte allocated, and
 * garbage buffers are reused while still in cache (measured: a loop of 1 MiB
 * tensors runs as fast as one that frees each tensor explicitly). */
static void report_bytes(lua_State *L, mgL_state *S, size_t nb) {
  S->gc_pending += nb;
  S->ext_since_major += nb;
  if (S->ext_since_major >= S->major_threshold) {
    lua_gc(L, LUA_GCCOLLECT);
    size_t live = (size_t)mg_storage_bytes_live() + (size_t)lua_gc(L, LUA_GCCOUNT) * 1024;
    S->major_threshold = live > MGL_GC_MAJOR_MIN ? live : MGL_GC_MAJOR_MIN;
    S->ext_since_major = 0;
    S->gc_pending = 0;
  } else if (S->gc_pending >= GC_REPORT_BYTES) {
    int kb = (int)(S->gc_pending / 1024 > 1 << 30 ? 1 << 30 : S->gc_pending / 1024);
    S->gc_pending -= (size_t)kb * 1024;
    lua_gc(L, LUA_GCSTEP, kb);
  }
}

/* Paces the collector by tensor count as well as by bytes. The collector sees
 * only a box (~40 bytes) per small tensor, so it collects when the Lua heap
 * has grown by a fraction of its size (generational: 20%); with a Lua heap of
 * a megabyte or more (a big script, or one that loaded AutoGraph) that is
 * tens of thousands of garbage tensors per collection. core/tensor.c keeps
 * 8192 freed headers and storages per thread for reuse; the rest went to
 * free() and came back through aligned_alloc, glibc's slow path (no
 * tcache/fastbins, splitting and coalescing in a fragmented heap): eager 2x2
 * ops ran 4-8x slower (measured, perf: _int_malloc, unlink_chunk,
 * malloc_consolidate). A step every GC_TENSOR_BATCH new tensors keeps each
 * batch of garbage within those pools; with a small heap the collector
 * already runs more often than that, so nothing changes there. When most
 * tensors made since the last step were kept (a loop filling a table with
 * them), there is little garbage to bound and each step would re-traverse
 * what holds them, so the batch doubles until tensors are dropped again
 * (measured: filling a table with 300k tensors otherwise took 1.8x as long).
 * A stopped collector (collectgarbage "stop") stays stopped. */
static void count_step(lua_State *L, mgL_state *S) {
  unsigned made = S->fresh_tensors;
  S->fresh_tensors = 0;
  if (!lua_gc(L, LUA_GCISRUNNING)) return;
  lua_gc(L, LUA_GCSTEP, 0);
  size_t freed = S->tensors_freed - S->freed_mark;  /* by this step and the collector's own since the last */
  S->freed_mark = S->tensors_freed;
  if (freed < made / 2) S->tensor_batch = S->tensor_batch < GC_TENSOR_BATCH_MAX / 2 ? S->tensor_batch * 2 : GC_TENSOR_BATCH_MAX;
  else S->tensor_batch = GC_TENSOR_BATCH;
}

void mgL_pushtensor(lua_State *L, mgL_state *S, mg_tensor *t, int fresh) {
  mgL_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = t;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  if (fresh) {
    size_t nb = mg_tensor_nbytes(t);
    if (nb > 64) report_bytes(L, S, nb);  /* bigger than the inline storage */
    if (++S->fresh_tensors >= S->tensor_batch) count_step(L, S);
  }
}

mg_tensor *mgL_testtensor(lua_State *L, int idx) {
  mgL_box *b = lua_touserdata(L, idx);
  if (!b || !lua_getmetatable(L, idx)) return NULL;
  int ok = lua_rawequal(L, -1, lua_upvalueindex(2));
  lua_pop(L, 1);
  return ok ? b->t : NULL;
}

mg_tensor *mgL_checktensor(lua_State *L, int idx) {
  mg_tensor *t = mgL_testtensor(L, idx);
  if (!t) luaL_typeerror(L, idx, MGL_TENSOR);
  return t;
}

/* Engine errors are raised at the user's line, not at the stdlib line that
 * called the op for them (a loss composed of ops, tape:gradient, ...). */
int mgL_raise(lua_State *L) {
  mgL_push_user_where(L);
  lua_pushstring(L, mg_last_error());
  lua_concat(L, 2);
  return lua_error(L);
}

/* ---- Lua tables to tensors ------------------------------------------------- */

typedef struct fill_state {
  int ndim;
  int64_t shape[MG_MAX_DIMS];
  int has_float, has_int, has_bool;
  int has_dt;       /* dt was given: numbers are checked against it in the first pass */
  mg_dtype dt;
  char *dst;
} fill_state;

/* Finds the shape by following the first element down. */
static mg_status probe_shape(lua_State *L, int idx, fill_state *fs) {
  int depth = 0;
  lua_pushvalue(L, idx);
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (depth == MG_MAX_DIMS) {
      lua_pop(L, depth + 1);
      return mg_seterror(MG_ESHAPE, "tensor: nested tables deeper than %d dimensions", MG_MAX_DIMS);
    }
    fs->shape[depth++] = (int64_t)lua_rawlen(L, -1);
    lua_rawgeti(L, -1, 1);
  }
  lua_pop(L, depth + 1);
  fs->ndim = depth;
  return MG_OK;
}

/* The key at the stack top as the user wrote it, for messages. */
static const char *key_str(lua_State *L, char *buf, size_t cap) {
  switch (lua_type(L, -1)) {
  case LUA_TSTRING: snprintf(buf, cap, "'%s'", lua_tostring(L, -1)); break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1)) snprintf(buf, cap, "%lld", (long long)lua_tointeger(L, -1));
    else snprintf(buf, cap, "%.14g", lua_tonumber(L, -1));
    break;
  default: snprintf(buf, cap, "of type %s", luaL_typename(L, -1)); break;
  }
  return buf;
}

/* The table at the stack top must be a sequence of n elements: keys 1..n
 * and nothing else. mg.tensor{a = 1} is not an empty tensor, and {1, nil, 3}
 * has no reliable length. */
static mg_status check_sequence(lua_State *L, int64_t n, int depth) {
  int64_t count = 0;
  char kb[80];
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    int isint = lua_isinteger(L, -1);
    lua_Integer k = isint ? lua_tointeger(L, -1) : 0;
    if (isint && k > n) {  /* past the length: a nil at n + 1 comes first */
      lua_pop(L, 1);
      return mg_seterror(MG_EARG, "tensor: the table at depth %d has a hole: element %lld is nil (a list with nil "
                         "in it has no reliable length)", depth + 1, (long long)n + 1);
    }
    if (!isint || k < 1) {
      mg_status st = mg_seterror(MG_EARG, "tensor: the table at depth %d has the key %s; a tensor's data is a list "
                                 "(keys 1..n) of numbers, booleans or such lists", depth + 1, key_str(L, kb, sizeof kb));
      lua_pop(L, 1);
      return st;
    }
    count++;
  }
  if (count == n) return MG_OK;
  for (int64_t i = 1; i <= n; i++) {
    int nil = lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TNIL;
    lua_pop(L, 1);
    if (nil)
      return mg_seterror(MG_EARG, "tensor: the table at depth %d has a hole: element %lld is nil (a list with nil in "
                         "it has no reliable length)", depth + 1, (long long)i);
  }
  return MG_OK;
}

/* A number stored as an element of fs->dt; integer dtypes must hold it
 * exactly (mg_check_number), so the first pass rejects 300 for uint8. */
static mg_status store_number(lua_State *L, fill_state *fs) {
  int isint = lua_isinteger(L, -1);
  lua_Integer iv = isint ? lua_tointeger(L, -1) : 0;
  double fv = lua_tonumber(L, -1);
  if (fs->has_dt && mg_dtype_is_int(fs->dt)) {
    mg_status st = mg_check_number("tensor", NULL, fs->dt, isint, iv, fv);
    if (st) return st;
  }
  if (!fs->dst) return MG_OK;
  int64_t v = isint ? (int64_t)iv : mg_dtype_is_int(fs->dt) ? (int64_t)fv : 0;  /* checked: integral, in range */
  switch (fs->dt) {
  case MG_FLOAT32: *(float *)fs->dst = (float)fv; break;
  case MG_FLOAT64: *(double *)fs->dst = fv; break;
  case MG_INT32: *(int32_t *)fs->dst = (int32_t)v; break;
  case MG_INT64: *(int64_t *)fs->dst = v; break;
  case MG_UINT8: *(uint8_t *)fs->dst = (uint8_t)v; break;
  case MG_BOOL: *(uint8_t *)fs->dst = fv != 0; break;
  case MG_INT8: *(int8_t *)fs->dst = (int8_t)v; break;
  case MG_INT16: *(int16_t *)fs->dst = (int16_t)v; break;
  /* an integer is exact in a double up to 2^53; rounded once to 16 bits */
  case MG_FLOAT16: *(uint16_t *)fs->dst = mg_f64_to_f16(isint ? (double)iv : fv); break;
  case MG_BFLOAT16: *(uint16_t *)fs->dst = mg_f64_to_bf16(isint ? (double)iv : fv); break;
  default: break;
  }
  fs->dst += mg_dtype_size(fs->dt);
  return MG_OK;
}

/* Walks the nested table at the stack top; checks it is rectangular, a
 * sequence at every level and of one kind (numbers or booleans), and that
 * every number fits the dtype when one was given; with fs->dst set, writes
 * the elements. */
static mg_status walk(lua_State *L, fill_state *fs, int depth) {
  int64_t n = fs->shape[depth];
  if ((int64_t)lua_rawlen(L, -1) != n)
    return mg_seterror(MG_ESHAPE, "tensor: ragged nested table: a row at depth %d has %lld elements, expected %lld",
                       depth + 1, (long long)lua_rawlen(L, -1), (long long)n);
  if (!fs->dst) {
    mg_status st = check_sequence(L, n, depth);
    if (st) return st;
  }
  for (int64_t i = 1; i <= n; i++) {
    int ty = lua_rawgeti(L, -1, (lua_Integer)i);
    mg_status st = MG_OK;
    if (depth + 1 < fs->ndim) {
      st = ty == LUA_TTABLE ? walk(L, fs, depth + 1)
                            : mg_seterror(MG_ESHAPE, "tensor: ragged nested table: expected a table at depth %d, got %s",
                                          depth + 2, lua_typename(L, ty));
    } else if (ty == LUA_TNUMBER) {
      int isint = lua_isinteger(L, -1);
      fs->has_int |= isint;
      fs->has_float |= !isint;
      st = store_number(L, fs);
    } else if (ty == LUA_TBOOLEAN) {
      fs->has_bool = 1;
      if (fs->dst) {
        int v = lua_toboolean(L, -1);
        switch (fs->dt) {
        case MG_FLOAT32: *(float *)fs->dst = (float)v; break;
        case MG_FLOAT64: *(double *)fs->dst = v; break;
        case MG_INT32: *(int32_t *)fs->dst = v; break;
        case MG_INT64: *(int64_t *)fs->dst = v; break;
        case MG_INT16: *(int16_t *)fs->dst = (int16_t)v; break;
        case MG_FLOAT16: *(uint16_t *)fs->dst = v ? 0x3c00 : 0; break;   /* 1.0 */
        case MG_BFLOAT16: *(uint16_t *)fs->dst = v ? 0x3f80 : 0; break;  /* 1.0 */
        default: *(uint8_t *)fs->dst = (uint8_t)v; break;                /* uint8, int8, bool */
        }
        fs->dst += mg_dtype_size(fs->dt);
      }
    } else if (mgL_isdim(L, -1)) {  /* its probe would become a constant */
      st = mg_seterror(MG_EARG, "tensor: %s", mgL_dim_message(L, lua_gettop(L), "putting it in a tensor's data"));
      lua_pop(L, 1);
    } else {
      st = mg_seterror(MG_EARG, "tensor: expected numbers or booleans in the nested table, got %s%s",
                       lua_typename(L, ty), ty == LUA_TTABLE ? " (rows nested deeper than the first row)" : "");
    }
    lua_pop(L, 1);
    if (st) return st;
  }
  return MG_OK;
}

mg_status mgL_table_to_tensor(lua_State *L, int idx, int has_dtype, mg_dtype dt, mg_tensor **out) {
  fill_state fs;
  memset(&fs, 0, sizeof fs);
  idx = lua_absindex(L, idx);
  mg_status st = probe_shape(L, idx, &fs);
  if (st) return st;
  fs.has_dt = has_dtype;
  fs.dt = dt;
  lua_pushvalue(L, idx);  /* first pass: validate and learn the kinds */
  st = fs.ndim > 0 ? walk(L, &fs, 0) : check_sequence(L, 0, 0);
  lua_pop(L, 1);
  if (st) return st;
  if ((fs.has_bool && (fs.has_int || fs.has_float)))
    return mg_seterror(MG_EARG, "tensor: nested table mixes booleans and numbers");
  fs.dt = has_dtype ? dt : fs.has_float ? MG_FLOAT32 : fs.has_bool ? MG_BOOL : fs.has_int ? MG_INT64 : MG_FLOAT32;
  if ((st = mg_tensor_empty(fs.dt, fs.ndim, fs.shape, out))) return st;
  if (fs.ndim > 0 && mg_tensor_numel(*out) > 0) {
    fs.dst = mg_tensor_data(*out);
    lua_pushvalue(L, idx);
    st = walk(L, &fs, 0);
    lua_pop(L, 1);
  }
  if (st) {
    mg_tensor_release(*out);
    *out = NULL;
  }
  return st;
}

mg_tensor *mgL_toinput(lua_State *L, int idx, const char *opname, int argn, unsigned char *owned) {
  mg_tensor *t = mgL_testtensor(L, idx);
  if (t) {  /* borrowed: the Lua value keeps it alive for the call (no refcount traffic) */
    *owned = 0;
    return t;
  }
  *owned = 1;
  return mgL_totensor(L, idx, opname, argn);
}

mg_tensor *mgL_totensor(lua_State *L, int idx, const char *opname, int argn) {
  mg_tensor *t = mgL_testtensor(L, idx);
  mg_status st = MG_OK;
  switch (lua_type(L, idx)) {
  case LUA_TUSERDATA:
    if (t) {
      mg_tensor_retain(t);
      return t;
    }
    if (mgL_isdim(L, idx)) {  /* an unknown size as a value: its probe would become a constant */
      char use[120];
      snprintf(use, sizeof use, "using it as argument #%d of '%s'", argn, opname);
      mg_seterror(MG_EARG, "%s", mgL_dim_message(L, idx, use));
      lua_pop(L, 1);
      return NULL;
    }
    break;
  case LUA_TNUMBER:
    st = lua_isinteger(L, idx) ? mg_scalar_i64((int64_t)lua_tointeger(L, idx), 1, &t)
                               : mg_scalar_f64(lua_tonumber(L, idx), 1, &t);
    return st ? NULL : t;
  case LUA_TBOOLEAN:  /* a bool scalar, as tf.constant(True) */
    if ((st = mg_tensor_empty(MG_BOOL, 0, NULL, &t))) return NULL;
    *(uint8_t *)mg_tensor_data(t) = (uint8_t)lua_toboolean(L, idx);
    return t;
  case LUA_TTABLE:
    st = mgL_table_to_tensor(L, idx, 0, MG_FLOAT32, &t);
    if (st) {
      mg_seterror(st, "%s: argument #%d: %s", opname, argn, mg_last_error());
      return NULL;
    }
    return t;
  default: break;
  }
  mg_seterror(MG_EARG, "%s: argument #%d must be a tensor, a number, a boolean or a nested table, got %s", opname,
              argn, luaL_typename(L, idx));
  return NULL;
}

void mgL_push_element(lua_State *L, const mg_tensor *t, int64_t flat) {
  mg_dtype dt = mg_tensor_dtype(t);
  if (dt == MG_BOOL) lua_pushboolean(L, mg_tensor_get_i64(t, flat) != 0);
  else if (mg_dtype_is_float(dt)) lua_pushnumber(L, mg_tensor_get_f64(t, flat));
  else lua_pushinteger(L, (lua_Integer)mg_tensor_get_i64(t, flat));
}

static void push_rows(lua_State *L, const mg_tensor *t, int depth, int64_t *flat) {
  const int64_t *shape = mg_tensor_shape(t);
  lua_createtable(L, (int)shape[depth], 0);
  for (int64_t i = 0; i < shape[depth]; i++) {
    if (depth + 1 == mg_tensor_ndim(t)) mgL_push_element(L, t, (*flat)++);
    else push_rows(L, t, depth + 1, flat);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

void mgL_push_totable(lua_State *L, const mg_tensor *t) {
  int64_t flat = 0;
  luaL_checkstack(L, 2 * MG_MAX_DIMS + 4, "totable");
  if (mg_tensor_ndim(t) == 0) mgL_push_element(L, t, 0);
  else push_rows(L, t, 0, &flat);
}

/* ---- applying ops and pushing results ----------------------------------- */

int mgL_apply_push(lua_State *L, mgL_state *S, mg_op op, mg_tensor **in, int nin,
                   const mg_attrs *attrs, const unsigned char *owned) {
  /* The box first (liolib's pattern): if Lua cannot allocate it (a host's
   * memory limit), the error is raised before the engine made a tensor. */
  mgL_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  mg_tensor *out = NULL;
  lua_State *saved = S->current_L;
  S->current_L = L;  /* the where hook reads this thread's stack (tape records, traced nodes) */
  mg_status st = mg_apply(S->ctx, op, in, nin, attrs, &out);
  S->current_L = saved;
  if (owned)
    for (int i = 0; i < nin; i++)
      if (owned[i]) mg_tensor_release(in[i]);
  if (st) return mgL_raise(L);
  b->t = out;
  if (!(mg_op_info(op)->flags & MG_VIEW)) {
    size_t nb = mg_tensor_nbytes(out);
    if (nb > 64) report_bytes(L, S, nb);
  }
  if (++S->fresh_tensors >= S->tensor_batch) count_step(L, S);  /* a view is a new header too */
  return 1;
}

/* ---- metamethods ------------------------------------------------------------ */

static int arith(lua_State *L, mg_op op, int nin) {
  mgL_state *S = mgL_getstate(L);
  mg_tensor *in[2];
  unsigned char owned[2] = {0, 0};
  const char *name = mg_op_info(op)->name;
  for (int i = 0; i < nin; i++) {
    in[i] = mgL_toinput(L, i + 1, name, i + 1, &owned[i]);
    if (!in[i]) {
      if (i && owned[0]) mg_tensor_release(in[0]);
      return mgL_raise(L);
    }
  }
  return mgL_apply_push(L, S, op, in, nin, NULL, owned);
}

static int tensor_add(lua_State *L) { return arith(L, MG_OP_ADD, 2); }
static int tensor_sub(lua_State *L) { return arith(L, MG_OP_SUB, 2); }
static int tensor_mul(lua_State *L) { return arith(L, MG_OP_MUL, 2); }
static int tensor_div(lua_State *L) { return arith(L, MG_OP_DIV, 2); }
static int tensor_mod(lua_State *L) { return arith(L, MG_OP_MOD, 2); }
static int tensor_pow(lua_State *L) { return arith(L, MG_OP_POW, 2); }
static int tensor_idiv(lua_State *L) { return arith(L, MG_OP_FLOORDIV, 2); }
static int tensor_unm(lua_State *L) { return arith(L, MG_OP_NEG, 1); }
/* Lua 5.4's bitwise operators on tensors: the bitwise ops (integer and bool
 * tensors; >> is arithmetic for signed dtypes, as NumPy). LuaJIT has no such
 * operators: there mg.bitwise_and etc. are the way. */
static int tensor_band(lua_State *L) { return arith(L, MG_OP_BITWISE_AND, 2); }
static int tensor_bor(lua_State *L) { return arith(L, MG_OP_BITWISE_OR, 2); }
static int tensor_bxor(lua_State *L) { return arith(L, MG_OP_BITWISE_XOR, 2); }
static int tensor_shl(lua_State *L) { return arith(L, MG_OP_LEFT_SHIFT, 2); }
static int tensor_shr(lua_State *L) { return arith(L, MG_OP_RIGHT_SHIFT, 2); }
static int tensor_bnot(lua_State *L) { return arith(L, MG_OP_BITWISE_NOT, 1); }

/* One-element operands only: Lua turns the result into a boolean. */
static double compare_operand(lua_State *L, int idx, const char *op) {
  if (lua_type(L, idx) == LUA_TNUMBER) return lua_tonumber(L, idx);
  mg_tensor *t = mgL_testtensor(L, idx);
  if (!t) mgL_error(L, "attempt to compare %s with %s", luaL_typename(L, 1), luaL_typename(L, 2));
  if (mg_tensor_is_freed(t)) mgL_error(L, "%s: the tensor was freed", op);
  if (mg_tensor_is_symbolic(t))
    mgL_error(L, "'%s' on a symbolic tensor while tracing a staged function would give a Lua boolean fixed at "
               "trace time; use mg.%s (elementwise, a tensor) or let AutoGraph convert the comparison", op,
               strcmp(op, "<") == 0 ? "less" : "less_equal");
  if (mg_tensor_numel(t) != 1) {
    char buf[200];
    int n = 0;
    const int64_t *s = mg_tensor_shape(t);
    n += snprintf(buf, sizeof buf, "(");
    for (int i = 0; i < mg_tensor_ndim(t); i++) n += snprintf(buf + n, sizeof buf - n, i ? ",%lld" : "%lld", (long long)s[i]);
    snprintf(buf + n, sizeof buf - n, ")");
    mgL_error(L, "'%s' compares one-element tensors only (got shape %s); use mg.%s for elementwise "
               "comparison", op, buf, strcmp(op, "<") == 0 ? "less" : "less_equal");
  }
  return mg_tensor_get_f64(t, 0);
}

static int tensor_lt(lua_State *L) {
  double a = compare_operand(L, 1, "<"), b = compare_operand(L, 2, "<");
  lua_pushboolean(L, a < b);
  return 1;
}

static int tensor_le(lua_State *L) {
  double a = compare_operand(L, 1, "<="), b = compare_operand(L, 2, "<=");
  lua_pushboolean(L, a <= b);
  return 1;
}

/* ipairs(t) walks the rows 1 to #t: Lua 5.4's ipairs reads t[1], t[2], ... through __index until
 * a nil, so the one index past the end answers nil when (and only when) ipairs' own iterator asks;
 * any other t[#t + 1] stays an error. The check runs only on that index (or, while tracing, on an
 * unknown first size, where ipairs would never end and must refuse). The FFI binding gives the same
 * through __ipairs. */
static int called_by_ipairs(lua_State *L) {
  lua_Debug ar;
  if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "f", &ar)) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "mg.ipairs_aux");
  int r = !lua_isnil(L, -1) && lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

#define MGL_NOT_ITERATOR                                                                         \
  "a tensor is not an iterator: `for row in t` does not loop over its rows; use "                \
  "`for i, row in ipairs(t)` (rows 1 to #t) or `for i = 1, #t do local row = t[i] ... end`"

static int tensor_call(lua_State *L) { return mgL_error(L, MGL_NOT_ITERATOR); }

/* t[i]: the i-th sub-tensor along the first axis (1-based, negative from the end). */
static int select_first_axis(lua_State *L, mgL_state *S, mg_tensor *t, lua_Integer i) {
  if (mg_tensor_ndim(t) > 0) {
    int64_t n = mg_tensor_shape(t)[0];
    int unknown = mg_tensor_is_symbolic(t) && mg_size_is_unknown(n);
    if ((unknown || i == n + 1) && called_by_ipairs(L)) {
      if (unknown) {  /* level 1 is ipairs' iterator (C); level 2 the loop's own function */
        luaL_where(L, 2);
        lua_pushliteral(L, "ipairs: the number of rows of a traced tensor is unknown while tracing (a -1 "
                           "size of its input signature), so the loop would not end; use mg.while_loop");
        lua_concat(L, 2);
        return lua_error(L);
      }
      lua_pushnil(L);
      return 1;
    }
  }
  mg_attrs a = {.set = 3u};
  a.v[0].n = 1;
  a.v[0].i[0] = 1;
  a.v[1].n = 1;
  a.v[1].i[0] = (int64_t)i;
  if (mg_tensor_ndim(t) == 0) return mgL_error(L, "index: cannot index a 0-d tensor (use t:item())");
  return mgL_apply_push(L, S, MG_OP_SELECT, &t, 1, &a, NULL);
}

static lua_Integer check_index_key(lua_State *L, int idx) {
  int isnum;
  lua_Integer i = lua_tointegerx(L, idx, &isnum);
  if (!isnum) mgL_error(L, "index: a tensor index must be an integer, got %s%s", luaL_typename(L, idx),
                         lua_type(L, idx) == LUA_TNUMBER ? " with a fraction" : "");
  return i;
}

/* Unknown sizes of a symbolic tensor come out as unknown-size objects (dim.c). */
static void push_shape(lua_State *L, const mg_tensor *t) {
  mgL_state *S = mgL_getstate(L);
  lua_createtable(L, mg_tensor_ndim(t), 0);
  for (int i = 0; i < mg_tensor_ndim(t); i++) {
    mgL_pushsize(L, S, t, i, "shape");
    lua_rawseti(L, -2, i + 1);
  }
}

/* t[key] and t[key] = v with a tensor key (a bool mask or an integer tensor of
 * positions): the stdlib's methods __getitem/__setitem (moongrad/indexing.lua)
 * do the work, the same functions the LuaJIT binding calls. */
static int tensor_key_hook(lua_State *L, const char *name, int nargs) {
  if (lua_getfield(L, lua_upvalueindex(3), name) != LUA_TFUNCTION)
    return mgL_error(L, "index: indexing with a tensor needs the moongrad stdlib (require \"moongrad\")");
  lua_insert(L, 1);
  lua_call(L, nargs, nargs == 2 ? 1 : 0);
  return nargs == 2 ? 1 : 0;
}

static int tensor_index(lua_State *L) {
  mg_tensor *t = mgL_checktensor(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(3)) != LUA_TNIL) return 1;  /* a method */
    const char *k = lua_tostring(L, 2);
    if (strcmp(k, "shape") == 0) push_shape(L, t);
    else if (strcmp(k, "dtype") == 0) lua_pushstring(L, mg_dtype_name(mg_tensor_dtype(t)));
    else if (strcmp(k, "ndim") == 0) lua_pushinteger(L, mg_tensor_ndim(t));
    else if (lua_getfield(L, lua_upvalueindex(3), "__fields") == LUA_TTABLE &&
             lua_getfield(L, -1, k) == LUA_TFUNCTION) {  /* fields added by the stdlib (Variable.name) */
      lua_pushvalue(L, 1);
      lua_call(L, 1, 1);
    } else lua_pushnil(L);
    return 1;
  }
  if (lua_type(L, 2) == LUA_TNUMBER) return select_first_axis(L, mgL_getstate(L), t, check_index_key(L, 2));
  if (mgL_testtensor(L, 2)) {
    lua_settop(L, 2);
    return tensor_key_hook(L, "__getitem", 2);
  }
  return mgL_error(L, "index: cannot index a tensor with a %s", luaL_typename(L, 2));
}

static int tensor_newindex(lua_State *L) {
  mgL_state *S = mgL_getstate(L);
  mg_tensor *t = mgL_checktensor(L, 1);
  if (mgL_testtensor(L, 2)) {
    lua_settop(L, 3);
    return tensor_key_hook(L, "__setitem", 3);
  }
  if (lua_type(L, 2) != LUA_TNUMBER)
    return mgL_error(L, "index: cannot set field '%s' of a tensor", luaL_tolstring(L, 2, NULL));
  lua_Integer i = check_index_key(L, 2);
  mg_tensor *src = mgL_totensor(L, 3, "assign", 3);
  if (!src) return mgL_raise(L);
  lua_State *saved = S->current_L;
  S->current_L = L;
  mg_status st = mg_tensor_set_index(S->ctx, t, (int64_t)i, src);
  S->current_L = saved;
  mg_tensor_release(src);
  if (st) return mgL_raise(L);
  return 0;
}

static int tensor_len(lua_State *L) {
  mg_tensor *t = mgL_checktensor(L, 1);
  if (mg_tensor_ndim(t) == 0) return mgL_error(L, "length of a 0-d tensor (use t:item())");
  mgL_pushsize(L, mgL_getstate(L), t, 0, "#");
  return 1;
}

static int tensor_tostring(lua_State *L) {
  mgL_box *b = luaL_checkudata(L, 1, MGL_TENSOR);
  if (!b->t) {
    lua_pushliteral(L, "tensor(<released>)");
    return 1;
  }
  if (mg_tensor_is_symbolic(b->t)) {  /* no values: show what the trace knows */
    char sb[200];
    int n = 0;
    const int64_t *s = mg_tensor_shape(b->t);
    for (int i = 0; i < mg_tensor_ndim(b->t) && n < 150; i++)
      n += snprintf(sb + n, sizeof sb - n, i ? ",%lld" : "%lld", (long long)(s[i] > 16777000 ? -1 : s[i]));
    sb[n] = 0;
    lua_pushfstring(L, "tensor(<symbolic>, shape=(%s), dtype=%s)", sb, mg_dtype_name(mg_tensor_dtype(b->t)));
    return 1;
  }
  char *s = mg_tensor_format(b->t, 80);
  if (!s) return mgL_error(L, "tostring: out of memory");
  lua_pushstring(L, s);
  mg_free(s);
  return 1;
}

/* __gc and __close: __close only frees the storage early (the box may still
 * be reachable); __gc drops the reference. */
static int tensor_gc(lua_State *L) {
  mgL_box *b = lua_touserdata(L, 1);
  if (!b || !mgL_testtensor(L, 1)) return 0;  /* the upvalue check: no registry lookup per object */
  mg_tensor_release(b->t);
  b->t = NULL;
  mgL_getstate(L)->tensors_freed++;  /* count_step's measure of garbage */
  return 0;
}

static int tensor_free(lua_State *L) {
  mg_tensor_free_storage(mgL_checktensor(L, 1));
  return 0;
}

/* ---- C-side methods ---------------------------------------------------------- */

static int tensor_numel(lua_State *L) {
  mgL_pushnumel(L, mgL_getstate(L), mgL_checktensor(L, 1));
  return 1;
}

static mg_tensor *check_live(lua_State *L, int idx, const char *what) {
  mg_tensor *t = mgL_checktensor(L, idx);
  if (mg_tensor_is_freed(t)) mgL_error(L, "%s: the tensor was freed (t:free() or <close>)", what);
  if (mg_tensor_is_symbolic(t))
    mgL_error(L, "%s: a symbolic tensor has no value while a staged function is being traced (its value exists "
               "only when the graph runs; use mg.print to see it then)", what);
  return t;
}

static int tensor_totable(lua_State *L) {
  mgL_push_totable(L, check_live(L, 1, "totable"));
  return 1;
}

static int tensor_item(lua_State *L) {
  mg_tensor *t = check_live(L, 1, "item");
  if (mg_tensor_numel(t) != 1) {
    char buf[64];
    snprintf(buf, sizeof buf, "%lld", (long long)mg_tensor_numel(t));
    return mgL_error(L, "item: the tensor has %s elements; item() needs exactly one", buf);
  }
  mgL_push_element(L, t, 0);
  return 1;
}

static int tensor_strides(lua_State *L) {
  mg_tensor *t = mgL_checktensor(L, 1);
  lua_createtable(L, mg_tensor_ndim(t), 0);
  for (int i = 0; i < mg_tensor_ndim(t); i++) {
    lua_pushinteger(L, (lua_Integer)mg_tensor_strides(t)[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int tensor_is_contiguous(lua_State *L) {
  lua_pushboolean(L, mg_tensor_is_contiguous(mgL_checktensor(L, 1)));
  return 1;
}

static int tensor_is_freed(lua_State *L) {
  lua_pushboolean(L, mg_tensor_is_freed(mgL_checktensor(L, 1)));
  return 1;
}

static int tensor_tobytes(lua_State *L) {
  mg_tensor *t = check_live(L, 1, "tobytes");
  size_t n = mg_tensor_nbytes(t);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  if (mg_tensor_copy_to(t, p, n)) return mgL_raise(L);
  luaL_pushresultsize(&b, n);
  return 1;
}

static int tensor_same_storage(lua_State *L) {
  mg_tensor *a = check_live(L, 1, "shares_storage"), *b = check_live(L, 2, "shares_storage");
  lua_pushboolean(L, mg_tensor_data(a) && mg_tensor_nbytes(a) && mg_tensor_nbytes(b) &&
                         mg_tensor_storage_id(a) == mg_tensor_storage_id(b));
  return 1;
}

static const luaL_Reg meta_fns[] = {
    {"__add", tensor_add},   {"__sub", tensor_sub},   {"__mul", tensor_mul},
    {"__div", tensor_div},   {"__mod", tensor_mod},   {"__pow", tensor_pow},
    {"__idiv", tensor_idiv}, {"__unm", tensor_unm},   {"__lt", tensor_lt},
    {"__band", tensor_band}, {"__bor", tensor_bor},   {"__bxor", tensor_bxor},
    {"__shl", tensor_shl},   {"__shr", tensor_shr},   {"__bnot", tensor_bnot},
    {"__le", tensor_le},     {"__index", tensor_index}, {"__newindex", tensor_newindex},
    {"__len", tensor_len},   {"__tostring", tensor_tostring}, {"__gc", tensor_gc},
    {"__close", tensor_free}, {"__call", tensor_call}, {NULL, NULL}};

static const luaL_Reg method_fns[] = {
    {"numel", tensor_numel},       {"totable", tensor_totable}, {"item", tensor_item},
    {"free", tensor_free},         {"strides", tensor_strides}, {"is_contiguous", tensor_is_contiguous},
    {"is_freed", tensor_is_freed}, {"tobytes", tensor_tobytes}, {"shares_storage", tensor_same_storage},
    {NULL, NULL}};

void mgL_protect_metatable(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, idx, "__name");
  lua_setfield(L, idx, "__metatable");
}

/* Creates the metatable (registry "mg.Tensor") and the methods table; leaves
 * the methods table on the stack. Metamethods get upvalues (state,
 * metatable, methods). */
void mgL_open_tensor(lua_State *L, int state_idx) {
  if (lua_getglobal(L, "ipairs") == LUA_TFUNCTION) {  /* its iterator, for called_by_ipairs */
    lua_newtable(L);
    lua_call(L, 1, 1);
  } else {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "mg.ipairs_aux");
  luaL_newmetatable(L, MGL_TENSOR);
  int mt = lua_gettop(L);
  lua_newtable(L);
  int methods = lua_gettop(L);
  lua_pushvalue(L, methods);
  lua_setfield(L, mt, "__methods");   /* for REPL completion */
  lua_pushvalue(L, mt);
  lua_pushvalue(L, state_idx);
  lua_pushvalue(L, mt);
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, meta_fns, 3);
  lua_pop(L, 1);
  mgL_protect_metatable(L, mt);
  lua_pushvalue(L, state_idx);
  lua_pushvalue(L, mt);
  luaL_setfuncs(L, method_fns, 2);
  lua_remove(L, mt);                  /* leaves methods */
}
