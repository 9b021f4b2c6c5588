/*
 * variable.c — Variables: tensors whose value can be replaced.
 *
 * A Variable is an ordinary mg_tensor with MG_TF_VARIABLE set, so every op
 * takes it as an input unchanged. Assigning writes in place when the storage
 * is held by nobody else; when a tape snapshot (or any view) still holds the
 * old value, the variable gets a fresh buffer instead (copy-on-write), so
 * recorded values never change under a gradient computation.
 */
#include "graph.h"

mg_status mg_variable_new(mg_ctx *ctx, const mg_tensor *init, int trainable, mg_tensor **out) {
  if (!init->storage) return mg_seterror(MG_ESTATE, "Variable: the initial value was freed");
  mg_tensor *v;
  mg_status st = mg_tensor_empty((mg_dtype)init->dtype, init->ndim, init->shape, &v);
  if (st) return st;
  if ((st = mg_copy_into(v, init))) {
    mg_tensor_release(v);
    return st;
  }
  (void)ctx;
  v->flags |= MG_TF_VARIABLE | (trainable ? MG_TF_TRAINABLE : 0);
  *out = v;
  return MG_OK;
}

int mg_tensor_is_variable(const mg_tensor *t) { return (t->flags & MG_TF_VARIABLE) != 0; }
int mg_variable_trainable(const mg_tensor *t) { return (t->flags & MG_TF_TRAINABLE) != 0; }
/* Versions come from one counter of Variable writes, so "written since
 * reading the counter" is one comparison per Variable (func.lua: a taped
 * staged call reads it once, not each Variable's version). */
static atomic_uint variable_writes;
static void bump_version(mg_tensor *var) { var->version = atomic_fetch_add(&variable_writes, 1) + 1; }

uint32_t mg_variable_version(const mg_tensor *var) { return var->version; }
uint32_t mg_variable_writes(void) { return atomic_load(&variable_writes); }

/* var takes fresh's (contiguous) buffer; fresh dies with the old one, which
 * whoever still holds it (a snapshot, a view) keeps. */
void mg_variable_swap_in(mg_tensor *var, mg_tensor *fresh) {
  mg_storage *old = var->storage;
  bump_version(var);
  var->storage = fresh->storage;
  var->offset = 0;
  mg_contiguous_strides(var->ndim, var->shape, var->strides);
  fresh->storage = old;
  mg_tensor_release(fresh);
}

mg_status mg_variable_assign(mg_ctx *ctx, mg_tensor *var, const mg_tensor *value) {
  char a[MG_SHAPE_BUF], b[MG_SHAPE_BUF];
  if (!(var->flags & MG_TF_VARIABLE)) return mg_seterror(MG_EARG, "assign: the target is not a Variable");
  if (!var->storage || (!value->storage && !(value->flags & MG_TF_SYMBOLIC)))
    return mg_seterror(MG_ESTATE, "assign: a tensor was freed");
  if (value->ndim != var->ndim || memcmp(value->shape, var->shape, (size_t)var->ndim * sizeof(int64_t)))
    return mg_seterror(MG_ESHAPE, "assign: a value of shape %s does not fit a Variable of shape %s",
                       mg_shape_str(value->ndim, value->shape, a, sizeof a),
                       mg_shape_str(var->ndim, var->shape, b, sizeof b));
  if (value->dtype != var->dtype && !mg_dtype_is_float((mg_dtype)var->dtype) && mg_dtype_is_float((mg_dtype)value->dtype))
    return mg_seterror(MG_EDTYPE, "assign: a %s value into a %s Variable would truncate; cast it first",
                       mg_dtype_name((mg_dtype)value->dtype), mg_dtype_name((mg_dtype)var->dtype));
  mg_status wst = mg_check_weak("assign", value, (mg_dtype)var->dtype, 0);  /* a Lua number must fit */
  if (wst) return wst;
  if (mg_tracing(ctx)) return mg_trace_assign(ctx, var, (mg_tensor *)value);  /* a node, run in order */
  if (value->flags & MG_TF_SYMBOLIC) return mg_symbolic_misuse(ctx, NULL, value);
  if (atomic_load(&var->storage->refs) > 1) {  /* someone holds the old value: copy on write */
    mg_tensor *fresh = mg_tensor_header((mg_dtype)var->dtype, var->ndim, var->shape);
    if (!fresh) return mg_seterror(MG_ENOMEM, "assign: out of memory");
    mg_status st = mg_tensor_alloc_storage(fresh);
    if (!st) st = mg_copy_into(fresh, value);
    if (st) {
      mg_tensor_release(fresh);
      return st;
    }
    mg_variable_swap_in(var, fresh);
    return MG_OK;
  }
  bump_version(var);
  return mg_copy_into(var, value);
}

mg_status mg_variable_read(mg_tensor *var, mg_tensor **out) {
  if (!var->storage) return mg_seterror(MG_ESTATE, "read: the Variable was freed");
  mg_tensor *t = mg_tensor_header((mg_dtype)var->dtype, var->ndim, var->shape);
  if (!t) return mg_seterror(MG_ENOMEM, "read: out of memory");
  mg_view_of(t, var, var->strides, var->offset);
  t->snapshot_of = mg_identity(var);
  mg_tensor_retain(t->snapshot_of);
  *out = t;
  return MG_OK;
}

/* In-place updates (optimizer ops, kernels/optim.c). `src` is the value the op
 * read: the Variable itself (eager) or a READ of it (a staged run, where the
 * READ node feeds only this op: mg_trace_op made it for this call). The op may
 * write straight into the Variable's buffer when nobody else can see that
 * buffer: the Variable holds it alone, or (a run) only it and that READ. Else
 * the op writes into a fresh buffer that mg_variable_swap_in then installs,
 * so snapshots and views keep the old value (copy-on-write, with no copy:
 * the op computes into the new buffer). */
mg_status mg_variable_update_target(const mg_ctx *ctx, mg_tensor *var, const mg_tensor *src, mg_tensor **fresh) {
  int holders = src == var ? 1 : 2;
  int mine = src == var || (ctx && ctx->running && !ctx->ntraces && src->snapshot_of == var);
  *fresh = NULL;
  bump_version(var);  /* the caller writes it now, in place or into *fresh (swapped in) */
  if (mine && src->storage == var->storage && src->offset == var->offset && mg_tensor_is_contiguous(var) &&
      mg_tensor_is_contiguous(src) && atomic_load(&var->storage->refs) == holders) {
    mg_storage_written(var->storage);
    return MG_OK;
  }
  mg_tensor *t = mg_tensor_header((mg_dtype)var->dtype, var->ndim, var->shape);
  if (!t) return mg_seterror(MG_ENOMEM, "update: out of memory");
  mg_status st = mg_tensor_alloc_storage(t);
  if (st) {
    mg_tensor_release(t);
    return st;
  }
  *fresh = t;
  return MG_OK;
}

/* ---- t[i] = value ------------------------------------------------------------------------- */

/* Whether value fits (broadcasts to) row i of t, with the message assign gives. */
static mg_status check_row_fits(const mg_tensor *t, const mg_tensor *value) {
  char a[MG_SHAPE_BUF], b[MG_SHAPE_BUF];
  int n;
  int64_t shape[MG_MAX_DIMS];
  if (mg_broadcast_shapes("assign", t->ndim - 1, t->shape + 1, value->ndim, value->shape, &n, shape)) return MG_ESHAPE;
  if (n != t->ndim - 1 || memcmp(shape, t->shape + 1, (size_t)n * sizeof(int64_t)))
    return mg_seterror(MG_ESHAPE, "assign: a value of shape %s does not fit a target of shape %s",
                       mg_shape_str(value->ndim, value->shape, a, sizeof a), mg_shape_str(n, t->shape + 1, b, sizeof b));
  return MG_OK;
}

/* A staged v[i] = value: the Variable becomes where(row == i, value, v), an
 * assign node run in order with the graph's other reads and writes. */
static mg_status trace_set_row(mg_ctx *ctx, mg_tensor *var, int64_t index, const mg_tensor *value) {
  int64_t n = var->shape[0], i0 = index < 0 ? n + index : index - ctx->index_base;
  if (i0 < 0 || i0 >= n)
    return mg_seterror(MG_EARG, "index: index %lld is out of range for axis 1 of size %lld%s", (long long)index,
                       (long long)n, ctx->index_base == 1 && index == 0 ? ": indices count from 1" : "");
  mg_status st = check_row_fits(var, value);
  if (st) return st;
  if (!mg_dtype_is_float((mg_dtype)var->dtype) && mg_dtype_is_float((mg_dtype)value->dtype))
    return mg_seterror(MG_EDTYPE, "assign: a %s value into a %s Variable would truncate; cast it first",
                       mg_dtype_name((mg_dtype)value->dtype), mg_dtype_name((mg_dtype)var->dtype));
  mg_tensor *rows = NULL, *pos = NULL, *hit = NULL, *mask = NULL, *upd = NULL, *cast = NULL;
  mg_attrs ar = {.set = 15u};  /* arange(0, n, 1, int64) */
  ar.v[0].n = ar.v[1].n = ar.v[2].n = ar.v[3].n = 1;
  ar.v[0].f = 0;
  ar.v[1].f = (double)n;
  ar.v[2].f = 1;
  ar.v[3].i[0] = MG_INT64;
  if (!(st = mg_apply(ctx, MG_OP_ARANGE, NULL, 0, &ar, &rows)) && !(st = mg_scalar_i64(i0, 1, &pos))) {
    mg_tensor *eq[2] = {rows, pos};
    st = mg_apply(ctx, MG_OP_EQUAL, eq, 2, NULL, &hit);
  }
  if (!st) {
    mg_attrs rs = {.set = 1u};
    rs.v[0].n = var->ndim;
    for (int d = 0; d < var->ndim; d++) rs.v[0].i[d] = d ? 1 : n;
    st = mg_apply(ctx, MG_OP_RESHAPE, &hit, 1, &rs, &mask);
  }
  if (!st) {
    mg_tensor *w[3] = {mask, (mg_tensor *)value, var};
    st = mg_apply(ctx, MG_OP_WHERE, w, 3, NULL, &upd);
  }
  if (!st && upd->dtype != var->dtype) {
    mg_attrs ca = {.set = 1u};
    ca.v[0].n = 1;
    ca.v[0].i[0] = var->dtype;
    st = mg_apply(ctx, MG_OP_CAST, &upd, 1, &ca, &cast);
  }
  if (!st) st = mg_variable_assign(ctx, var, cast ? cast : upd);
  mg_tensor_release(rows);
  mg_tensor_release(pos);
  mg_tensor_release(hit);
  mg_tensor_release(mask);
  mg_tensor_release(upd);
  mg_tensor_release(cast);
  return st;
}

mg_status mg_tensor_set_index(mg_ctx *ctx, mg_tensor *t, int64_t index, const mg_tensor *value) {
  if (t->ndim == 0) return mg_seterror(MG_EARG, "index: cannot index a 0-d tensor (use t:item())");
  if (!t->storage && !(t->flags & MG_TF_SYMBOLIC)) return mg_seterror(MG_ESTATE, "assign: a tensor was freed");
  if (!value->storage && !(value->flags & MG_TF_SYMBOLIC)) return mg_seterror(MG_ESTATE, "assign: the value was freed");
  int var = (t->flags & MG_TF_VARIABLE) != 0;
  if (var && mg_tracing(ctx)) return trace_set_row(ctx, t, index, value);
  if (t->flags & MG_TF_SYMBOLIC)
    return mg_seterror(MG_ESTATE,
                       "index assignment: this tensor is a value of the staged function '%s' (a node of its graph, "
                       "not a buffer), so t[i] = v cannot write into it; build a new tensor instead (mg.where, "
                       "mg.concat), accumulate rows in an mg.TensorArray, or keep the state in an mg.Variable "
                       "(v[i] = x updates a Variable in a staged function)", t->graph->name);
  if (value->flags & MG_TF_SYMBOLIC)
    return mg_seterror(MG_ESTATE,
                       "index assignment: the value is a tensor of the staged function '%s' (known only when its "
                       "graph runs), so it cannot be written into a tensor's buffer while tracing; build a new "
                       "tensor instead (mg.where, mg.concat), accumulate rows in an mg.TensorArray, or write into an "
                       "mg.Variable (v[i] = x updates a Variable in a staged function)", value->graph->name);
  mg_status st;
  if (var) {  /* a Variable is a value: whoever holds the old buffer (a tape snapshot) keeps it */
    if (atomic_load(&t->storage->refs) > 1) {
      mg_tensor *fresh = mg_tensor_header((mg_dtype)t->dtype, t->ndim, t->shape);
      if (!fresh) return mg_seterror(MG_ENOMEM, "assign: out of memory");
      if ((st = mg_tensor_alloc_storage(fresh)) || (st = mg_copy_into(fresh, t))) {
        mg_tensor_release(fresh);
        return st;
      }
      mg_variable_swap_in(t, fresh);
    } else {
      bump_version(t);
    }
  }
  mg_attrs a = {.set = 3u};
  a.v[0].n = a.v[1].n = 1;
  a.v[0].i[0] = ctx ? ctx->index_base : 0;
  a.v[1].i[0] = index;
  mg_tensor *row;
  if (ctx) ctx->paused++;  /* selecting the row to write is not an op of the user's */
  st = mg_apply(ctx, MG_OP_SELECT, &t, 1, &a, &row);
  if (ctx) ctx->paused--;
  if (st) return st;
  st = mg_tensor_assign(row, value);
  mg_tensor_release(row);
  return st;
}
