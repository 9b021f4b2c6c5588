/*
 * variable.c — Variables: tensors whose value can be replaced.
 *
 * A Variable is an ordinary mg_tensor with MG_TF_VARIABLE set, so every op
 * takes it as an input unchanged. Assigning writes in place when the storage
 * is held by nobody else; when a tape snapshot (or any view) still holds the
 * old value, the variable gets a fresh buffer instead (copy-on-write), so
 * recorded values never change under a gradient computation.
 */
#include "internal.h"

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
      mg_tensor_is_contiguous(src) && atomic_load(&var->storage->refs) == holders)
    return MG_OK;
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
