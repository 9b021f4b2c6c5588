/*
 * apply.c — mg_apply, the one entry point every op goes through.
 *
 * The steps are always the same, driven by the op's row: check arity and that
 * no input was freed, fill attribute defaults, run infer (all validation),
 * cast inputs to the dtypes infer asked for, make the output (allocated, or a
 * bare header for view ops), run the kernel. Tracing and tape recording hook
 * in here later, so no op is special-cased anywhere else.
 *
 * The storage dtypes (float16, bfloat16, int8, int16) are handled here too,
 * once for every op: unless the op's row says its kernel knows them
 * (MG_STORAGE, or a view, which only moves bytes), its storage inputs are
 * widened to float32/int32 (mg_dtype_compute), the kernel computes a
 * float32/int32 result, and that is rounded once into the storage dtype infer
 * chose (round-to-nearest-even; NaN and inf kept). Matmul and conv on
 * bfloat16 thus accumulate in float32 (BLIS sgemm), sums accumulate in
 * float32, and an op added tomorrow works on bfloat16 with no kernel change.
 */
#include "graph.h"
#include <stdio.h>
#include <stdlib.h>

#define SMALL_INPUTS 8

static mg_status check_inputs(const mg_opinfo *info, mg_tensor *const *in, int nin) {
  if (info->flags & MG_VARIADIC) {
    if (nin < 1) return mg_seterror(MG_EARG, "%s: needs at least one tensor", info->name);
  } else if (nin != info->nin) {
    return mg_seterror(MG_EARG, "%s: takes %d tensor input%s, got %d", info->name, info->nin,
                       info->nin == 1 ? "" : "s", nin);
  }
  for (int i = 0; i < nin; i++) {
    if (!in[i]) return mg_seterror(MG_EARG, "%s: input %d is missing", info->name, i + 1);
    if (!in[i]->storage && !(in[i]->flags & MG_TF_SYMBOLIC))
      return mg_seterror(MG_ESTATE, "%s: input %d was freed (t:free() or <close>)", info->name, i + 1);
  }
  return MG_OK;
}

/* Symbolic inputs are only valid while their graph is being traced. */
static mg_status check_symbolic(mg_ctx *ctx, const mg_opinfo *info, mg_tensor *const *in, int nin) {
  for (int i = 0; i < nin; i++)
    if ((in[i]->flags & MG_TF_SYMBOLIC) && (!ctx || !ctx->ntraces || in[i]->graph->finished))
      return mg_symbolic_misuse(ctx, info, in[i]);
  return MG_OK;
}

/* A Lua number (weak scalar) cast to an integer dtype must fit it: uint8 250
 * + 300 is an error, not 38 (NumPy 2's OverflowError). cast() itself drops a
 * fraction, as an explicit conversion does. */
static mg_status check_weak_inputs(const mg_opinfo *info, mg_op op, mg_tensor *const *in, int nin, const mg_meta *m) {
  for (int i = 0; i < nin; i++) {
    if (!(in[i]->flags & MG_TF_WEAK)) continue;
    mg_dtype want = op == MG_OP_CAST ? m->dtype : i < MG_CAST_SLOTS ? m->cast[i] : m->cast_rest;
    if (want == MG_NDTYPES || want == (mg_dtype)in[i]->dtype) continue;
    mg_status st = mg_check_weak(info->name, in[i], want, op == MG_OP_CAST);
    if (st) return st;
  }
  return MG_OK;
}

/* Casts the inputs whose dtype differs from what infer asked for; `owned`
 * marks the temporaries to release. */
static mg_status cast_inputs(mg_ctx *ctx, const mg_meta *m, mg_tensor *const *in, int nin,
                             mg_tensor **cast, unsigned char *owned) {
  for (int i = 0; i < nin; i++) {
    mg_dtype want = i < MG_CAST_SLOTS ? m->cast[i] : m->cast_rest;
    cast[i] = in[i];
    if (want == MG_NDTYPES || want == (mg_dtype)in[i]->dtype) continue;
    mg_attrs a = {.set = 1u};
    a.v[0].n = 1;
    a.v[0].i[0] = want;
    mg_status st = mg_apply(ctx, MG_OP_CAST, &in[i], 1, &a, &cast[i]);
    if (st) return st;
    owned[i] = 1;
  }
  return MG_OK;
}

int mg_apply_widens(const mg_opinfo *info, const mg_meta *m, mg_tensor *const *in, int nin) {
  if (info->flags & (MG_STORAGE | MG_VIEW)) return 0;
  if (mg_dtype_is_storage(m->dtype)) return 1;
  for (int i = 0; i < nin; i++) {
    mg_dtype want = i < MG_CAST_SLOTS ? m->cast[i] : m->cast_rest;
    if (mg_dtype_is_storage(want == MG_NDTYPES ? (mg_dtype)in[i]->dtype : want)) return 1;
  }
  return 0;
}

/* The storage inputs (already cast to what infer asked for) widened to
 * their compute dtypes, in place of cast[i]. An in-place update (optimizer
 * steps) cannot write through a widened copy: those ops refuse them. */
static mg_status widen_inputs(mg_ctx *ctx, const mg_opinfo *info, mg_tensor **cast, unsigned char *owned, int nin,
                             mg_tensor **orig) {
  for (int i = 0; i < nin; i++) {
    mg_dtype dt = (mg_dtype)cast[i]->dtype;
    if (!mg_dtype_is_storage(dt)) continue;
    if (info->flags & MG_STATE)
      return mg_seterror(MG_EDTYPE, "%s: input %d is %s; an in-place update takes float32 or float64 variables "
                         "(keep variables in float32: mg.nn.mixed_precision)", info->name, i + 1, mg_dtype_name(dt));
    int j = 0;  /* x * x: the same tensor is widened once */
    while (j < i && !(orig[j] && orig[j] == cast[i])) j++;
    if (j < i) {
      if (owned[i]) mg_tensor_release(cast[i]);
      mg_tensor_retain(cast[j]);
      cast[i] = cast[j];
      owned[i] = 1;
      continue;
    }
    orig[i] = cast[i];
    mg_attrs a = {.set = 1u};
    a.v[0].n = 1;
    a.v[0].i[0] = mg_dtype_compute(dt);
    mg_tensor *w;
    mg_status st = mg_apply(ctx, MG_OP_CAST, &cast[i], 1, &a, &w);
    if (st) return st;
    if (owned[i]) mg_tensor_release(cast[i]);
    cast[i] = w;
    owned[i] = 1;
  }
  return MG_OK;
}

/* The kernel's float32/int32 result rounded once into the storage dtype. */
static mg_status narrow_result(mg_ctx *ctx, mg_dtype dt, mg_tensor **res) {
  mg_attrs a = {.set = 1u};
  a.v[0].n = 1;
  a.v[0].i[0] = dt;
  mg_tensor *r;
  mg_status st = mg_apply(ctx, MG_OP_CAST, res, 1, &a, &r);
  if (st) return st;
  mg_tensor_release(*res);
  *res = r;
  return MG_OK;
}

/* Every op's result, a view's too, gets its element count and byte size
 * checked here, once (mg_shape_size): `expand{2^32, 2^32}` is an error, not a
 * tensor whose numel wrapped to 0. While tracing, an unknown size (a probe)
 * counts as 1: its real value is checked when the graph runs (mg_apply again). */
static mg_status check_size(const mg_opinfo *info, const mg_meta *m, int tracing) {
  const int64_t *shape = m->shape;
  int64_t known[MG_MAX_DIMS];
  if (tracing) {
    for (int i = 0; i < m->ndim; i++) known[i] = mg_is_probe(m->shape[i]) ? 1 : m->shape[i];
    shape = known;
  }
  return mg_shape_size(info->name, m->dtype, m->ndim, shape, NULL, NULL);
}

mg_status mg_apply(mg_ctx *ctx, mg_op op, mg_tensor *const *inputs, int nin,
                   const mg_attrs *attrs, mg_tensor **out) {
  const mg_opinfo *info = mg_op_info(op);
  if (!info) return mg_seterror(MG_EARG, "mg_apply: unknown op %d", (int)op);
  mg_status st = check_inputs(info, inputs, nin);
  if (st) return st;
  if (!(ctx && ctx->ntraces)) {  /* cheap when no input is symbolic */
    for (int i = 0; i < nin; i++)
      if (inputs[i]->flags & MG_TF_SYMBOLIC) return check_symbolic(ctx, info, inputs, nin);
  } else if ((st = check_symbolic(ctx, info, inputs, nin))) {
    return st;
  }

  mg_attrs a;  /* copy only the op's slots: the struct is large and this path is hot */
  a.set = attrs ? attrs->set : 0;
  if (attrs && info->nattrs) memcpy(a.v, attrs->v, (size_t)info->nattrs * sizeof a.v[0]);
  if (info->nattrs) mg_attrs_defaults(op, &a);

  mg_call call = {ctx, op, info, inputs, nin, &a};
  mg_meta m;
  m.cast_rest = MG_NDTYPES;
  for (int i = 0; i < MG_CAST_SLOTS; i++) m.cast[i] = MG_NDTYPES;
  if ((st = mg_op_infer(op)(&call, &m))) return st;
  if ((st = check_weak_inputs(info, op, inputs, nin, &m))) return st;
  if (ctx && ctx->ntraces && mg_trace_wants(ctx, info, inputs, nin)) {
    if ((st = check_size(info, &m, 1))) return st;
    return mg_trace_op(ctx, op, inputs, nin, &a, &m, out);  /* add a node instead of computing */
  }
  if ((st = check_size(info, &m, 0))) return st;

  mg_tensor *small[SMALL_INPUTS], **cast = small;
  unsigned char owned_small[SMALL_INPUTS], *owned = owned_small;
  if (nin > SMALL_INPUTS) {
    cast = malloc((size_t)nin * sizeof *cast);
    owned = calloc((size_t)nin, 1);
    if (!cast || !owned) {
      free(cast);
      free(owned);
      return mg_seterror(MG_ENOMEM, "%s: out of memory", info->name);
    }
  }
  int ncast = 0;
  mg_tensor *res = NULL;
  if (nin > 0) memset(owned, 0, (size_t)nin);  /* nin >= 1 or 0 here: check_inputs */
  ncast = nin;
  if (ctx) ctx->paused++;  /* the casts and anything a kernel calls are not recorded */
  st = cast_inputs(ctx, &m, inputs, nin, cast, owned);
  int widen = !st && mg_apply_widens(info, &m, inputs, nin);
  if (widen) {
    mg_tensor *orig_small[SMALL_INPUTS], **orig = nin > SMALL_INPUTS ? calloc((size_t)nin, sizeof *orig) : orig_small;
    if (!orig) st = mg_seterror(MG_ENOMEM, "%s: out of memory", info->name);
    else {
      for (int i = 0; i < nin; i++) orig[i] = NULL;
      st = widen_inputs(ctx, info, cast, owned, nin, orig);
      if (orig != orig_small) free(orig);
    }
  }
  if (ctx) ctx->paused--;
  if (st) goto cleanup;
  res = mg_tensor_header(widen ? mg_dtype_compute(m.dtype) : m.dtype, m.ndim, m.shape);
  if (!res) {
    st = mg_seterror(MG_ENOMEM, "%s: out of memory", info->name);
    goto cleanup;
  }
  if (!(info->flags & MG_VIEW) && (st = mg_tensor_alloc_storage(res))) {
    char why[512];  /* the message lives in the buffer we are about to rewrite */
    snprintf(why, sizeof why, "%s", mg_last_error());
    mg_seterror(st, "%s: %s", info->name, why);
    goto cleanup;
  }
  call.in = cast;
  if (ctx) ctx->paused++;
  st = mg_kernel_run(mg_op_kernel(op), &call, res);
  if (!st && widen && res->dtype != m.dtype) st = narrow_result(ctx, m.dtype, &res);
  if (ctx) ctx->paused--;
  if (!st && ctx && ctx->ntapes && !ctx->paused) st = mg_tape_record_op(ctx, op, inputs, nin, &a, res);

cleanup:
  for (int i = 0; i < ncast; i++)
    if (owned[i]) mg_tensor_release(cast[i]);
  if (cast != small) {
    free(cast);
    free(owned);
  }
  if (st) {
    mg_tensor_release(res);
    return st;
  }
  *out = res;
  return MG_OK;
}
