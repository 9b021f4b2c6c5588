/*
 * tape.c — eager reverse-mode autodiff: the gradient tape (TF 2's model).
 *
 * A recording tape keeps one record per op whose input it tracks: the op,
 * its inputs (identity and value), its output and attributes. A tensor is
 * tracked when it was watched or produced by a recorded op. Records hold
 * references, so tensor pointers are stable identities for the tape's life.
 * A variable input is recorded twice over: its identity (the variable, for
 * gradient lookup) and a snapshot of its value (for the rule), so a later
 * assign cannot corrupt the gradient.
 *
 * gradient() marks the records that depend on a source (forward pass), then
 * walks them backward calling each op's rule (grad.c). Rules are written with
 * mg_apply, so while other tapes record, the backward pass is itself recorded
 * there: nested tapes give higher-order gradients with no special case.
 *
 * Saved values can be written in place afterwards (t[i] = v, copy-into), which
 * would silently change the gradient. So a record also keeps the storage
 * version (mg_storage_written) of every value it holds and the user's line
 * (the context's where hook); a rule that reads a value whose version moved
 * gets a stand-in with no storage instead, and its failure is reported as
 * PyTorch does: "modified by an in-place operation", naming the op, the
 * line and both versions. A rule that never reads the value (add's, say)
 * is not disturbed. Custom and group records (Lua closures, staged calls)
 * may read anything they hold, so any moved version there is an error.
 *
 * A staged cond/while node has several outputs and its gradient is itself a
 * cond/while node built by Lua (stdlib/moongrad/func.lua): it is one "group"
 * record, whose backward runs once with the gradients of all its outputs
 * (they are all final when the walk reaches it: every consumer came later).
 */
#include "internal.h"
#include "ptrmap.h"
#include <stdio.h>
#include <stdlib.h>

/* ---- records ----------------------------------------------------------------- */

typedef struct record {
  mg_op op;                 /* MG_OP_COUNT for a custom-gradient record */
  int nin;
  mg_tensor **ids;          /* identities (variables stay variables) */
  mg_tensor **vals;         /* the values the op read */
  mg_tensor *out;
  int nout;                 /* > 1 only for group records */
  mg_tensor **outs;         /* all outputs (&out when there is one) */
  mg_attrs *attrs;          /* NULL when the op has no attributes */
  unsigned *vers;           /* storage versions of vals[0..nin) then outs[0..nout) when recorded */
  const char *where;        /* the user's "file:line" (the context's hook; stable), or NULL */
  mg_backward_fn custom;
  mg_backward_group_fn group;
  void *ud;
  void (*free_ud)(void *);
  int refs;                 /* tapes holding this record */
} record;

struct mg_tape {
  mg_ctx *ctx;
  int persistent, watch_vars, recording, used;
  int trace_depth;          /* traces active when recording started */
  int pending;              /* took an op of a deeper trace (a cond branch, a loop body) since the last group */
  int crossed;              /* ... and that cond/while node got no group record (func.lua makes them) */
  ptrmap tracked;           /* tensor identity -> (void *)1; all are held by records */
  record **recs;
  size_t nrecs, cap_recs;
};

static void record_release(record *r) {
  if (!r || --r->refs > 0) return;
  for (int i = 0; i < r->nin; i++) {
    mg_tensor_release(r->ids[i]);
    mg_tensor_release(r->vals[i]);
  }
  for (int k = 0; k < r->nout; k++) mg_tensor_release(r->outs[k]);
  if (r->free_ud) r->free_ud(r->ud);
  free(r->attrs);
  free(r);
}

static record *record_new(mg_op op, int nin, mg_tensor *const *in, const mg_attrs *attrs, int nout,
                          mg_tensor *const *outs) {
  size_t nt = 2 * (size_t)nin + (size_t)nout;
  record *r = calloc(1, sizeof *r + nt * sizeof(mg_tensor *) + ((size_t)nin + (size_t)nout) * sizeof(unsigned));
  if (!r) return NULL;
  r->op = op;
  r->nin = nin;
  r->ids = (mg_tensor **)(r + 1);
  r->vals = r->ids + nin;
  r->outs = r->vals + nin;
  r->vers = (unsigned *)(r->ids + nt);
  r->nout = nout;
  r->refs = 0;
  if (attrs && op < MG_OP_COUNT && mg_op_info(op)->nattrs) {
    r->attrs = malloc(sizeof *attrs);
    if (!r->attrs) {
      free(r);
      return NULL;
    }
    *r->attrs = *attrs;
  }
  for (int i = 0; i < nin; i++) {
    r->ids[i] = mg_identity(in[i]);
    mg_tensor_retain(r->ids[i]);
    if (in[i]->flags & MG_TF_VARIABLE) {
      if (mg_variable_read(in[i], &r->vals[i])) {
        r->vals[i] = in[i];   /* out of memory: fall back to the live value */
        mg_tensor_retain(in[i]);
      }
    } else {
      r->vals[i] = in[i];
      mg_tensor_retain(in[i]);
    }
  }
  for (int k = 0; k < nout; k++) {
    r->outs[k] = outs[k];
    mg_tensor_retain(outs[k]);
  }
  for (int i = 0; i < nin; i++) r->vers[i] = mg_storage_version(r->vals[i]->storage);
  for (int k = 0; k < nout; k++) r->vers[nin + k] = mg_storage_version(outs[k]->storage);
  r->out = outs[0];
  return r;
}

/* Appends r to the tape and tracks its output; 0 (nothing pushed) when out of memory. */
static int tape_push(mg_tape *t, record *r) {
  if (t->nrecs == t->cap_recs) {
    size_t cap = t->cap_recs ? t->cap_recs * 2 : 64;
    record **recs = realloc(t->recs, cap * sizeof *recs);
    if (!recs) return 0;
    t->recs = recs;
    t->cap_recs = cap;
  }
  for (int k = 0; k < r->nout; k++)
    if (!map_put(&t->tracked, r->outs[k], (void *)1)) return 0;
  t->recs[t->nrecs++] = r;
  r->refs++;
  return 1;
}

/* Tracks x, holding a reference through an input-less record. */
static int tape_hold(mg_tape *t, mg_tensor *x) {
  if (map_get(&t->tracked, x)) return 1;
  record *r = record_new(MG_OP_COUNT, 0, NULL, NULL, 1, &x);
  if (r && tape_push(t, r)) return 1;
  if (r) {
    r->refs = 1;
    record_release(r);
  }
  return 0;
}

/* Does tape t track any input (watching accessed trainable variables first)? */
static int tape_takes(mg_tape *t, mg_tensor *const *in, int nin) {
  int any = 0;
  for (int i = 0; i < nin; i++) {
    mg_tensor *id = mg_identity(in[i]);
    if (t->watch_vars && (id->flags & MG_TF_TRAINABLE)) tape_hold(t, id);
    if (map_get(&t->tracked, id)) any = 1;
  }
  return any;
}

static mg_status record_on_tapes(mg_ctx *ctx, mg_op op, mg_tensor *const *in, int nin,
                                 const mg_attrs *attrs, int nout, mg_tensor *const *outs, mg_backward_fn custom,
                                 mg_backward_group_fn group, void *ud, void (*free_ud)(void *)) {
  record *r = NULL;
  mg_status st = MG_OK;
  for (int k = 0; k < ctx->ntapes; k++) {
    mg_tape *t = ctx->tapes[k];
    if (!t->recording) continue;
    /* A tape started outside any trace ignores the symbolic ops of a trace run
     * in its scope (it records the graph's ops when the graph runs); one
     * started inside a staged function ignores the ops of deeper traces (cond
     * branches, loop bodies): it records the cond/while node as a group. */
    if (ctx->ntraces > t->trace_depth) {
      if (t->trace_depth > 0 && tape_takes(t, in, nin)) t->pending = 1;
      continue;
    }
    if (group) t->pending = 0;  /* the node whose branches those ops were is covered */
    else if (t->pending) t->crossed = 1;
    if (!tape_takes(t, in, nin)) continue;
    if (!r) {
      r = record_new(op, nin, in, attrs, nout, outs);
      if (!r) {
        st = mg_seterror(MG_ENOMEM, "tape: out of memory recording %s", op < MG_OP_COUNT ? mg_op_info(op)->name : "custom_gradient");
        break;
      }
      r->where = ctx->where ? ctx->where(ctx->where_ud) : NULL;
      r->custom = custom;
      r->group = group;
      r->ud = ud;
      r->free_ud = free_ud;
      free_ud = NULL;   /* the record owns ud now */
    }
    if (!tape_push(t, r)) {
      st = mg_seterror(MG_ENOMEM, "tape: out of memory");
      break;
    }
  }
  if (r && r->refs == 0) {
    r->refs = 1;
    record_release(r);
  }
  if (free_ud) free_ud(ud);
  return st;
}

mg_status mg_tape_record_op(mg_ctx *ctx, mg_op op, mg_tensor *const *in, int nin,
                            const mg_attrs *attrs, mg_tensor *out) {
  const mg_opinfo *info = mg_op_info(op);
  if ((info->flags & MG_NOGRAD) || !mg_dtype_is_float((mg_dtype)out->dtype)) return MG_OK;
  return record_on_tapes(ctx, op, in, nin, attrs, 1, &out, NULL, NULL, NULL, NULL);
}

mg_status mg_tape_record_custom(mg_ctx *ctx, int nin, mg_tensor *const *inputs, mg_tensor *output,
                                mg_backward_fn fn, void *ud, void (*free_ud)(void *)) {
  if (!ctx->ntapes || ctx->paused) {
    if (free_ud) free_ud(ud);
    return MG_OK;
  }
  return record_on_tapes(ctx, MG_OP_COUNT, inputs, nin, NULL, 1, &output, fn, NULL, ud, free_ud);
}

mg_status mg_tape_record_group(mg_ctx *ctx, int nin, mg_tensor *const *inputs, int nout,
                               mg_tensor *const *outputs, mg_backward_group_fn fn, void *ud,
                               void (*free_ud)(void *)) {
  if (!ctx->ntapes || ctx->paused || nout < 1) {
    if (free_ud) free_ud(ud);
    if (nout < 1)  /* a node with no outputs: no gradient flows through it, the ops inside it are covered */
      for (int k = 0; k < ctx->ntapes; k++)
        if (ctx->tapes[k]->recording && ctx->ntraces <= ctx->tapes[k]->trace_depth) ctx->tapes[k]->pending = 0;
    return MG_OK;
  }
  return record_on_tapes(ctx, MG_OP_COUNT, inputs, nin, NULL, nout, outputs, NULL, fn, ud, free_ud);
}

int mg_tapes_track_any(mg_ctx *ctx, int n, mg_tensor *const *ts) {
  if (ctx->paused) return 0;
  for (int k = 0; k < ctx->ntapes; k++) {
    mg_tape *t = ctx->tapes[k];
    if (t->recording && t->trace_depth == ctx->ntraces && tape_takes(t, ts, n)) return 1;
  }
  return 0;
}

/* ---- the tape object ------------------------------------------------------------ */

mg_tape *mg_tape_new(mg_ctx *ctx, int persistent, int watch_accessed_variables) {
  mg_tape *t = calloc(1, sizeof *t);
  if (!t) {
    mg_seterror(MG_ENOMEM, "GradientTape: out of memory");
    return NULL;
  }
  t->ctx = ctx;
  t->persistent = persistent;
  t->watch_vars = watch_accessed_variables;
  return t;
}

static void tape_clear(mg_tape *t) {
  for (size_t i = 0; i < t->nrecs; i++) record_release(t->recs[i]);
  free(t->recs);
  t->recs = NULL;
  t->nrecs = t->cap_recs = 0;
  map_free(&t->tracked);
}

void mg_tape_free(mg_tape *t) {
  if (!t) return;
  mg_tape_stop(t);
  tape_clear(t);
  free(t);
}

mg_status mg_tape_start(mg_tape *t) {
  mg_ctx *ctx = t->ctx;
  if (t->recording) return MG_OK;
  if (t->used && !t->persistent)
    return mg_seterror(MG_ESTATE, "GradientTape: this non-persistent tape was used by gradient(); make a new one");
  if (ctx->ntapes == ctx->cap_tapes) {
    int cap = ctx->cap_tapes ? ctx->cap_tapes * 2 : 4;
    mg_tape **tapes = realloc(ctx->tapes, (size_t)cap * sizeof *tapes);
    if (!tapes) return mg_seterror(MG_ENOMEM, "GradientTape: out of memory");
    ctx->tapes = tapes;
    ctx->cap_tapes = cap;
  }
  ctx->tapes[ctx->ntapes++] = t;
  t->recording = 1;
  t->trace_depth = ctx->ntraces;
  return MG_OK;
}

void mg_tape_stop(mg_tape *t) {
  mg_ctx *ctx = t->ctx;
  if (!t->recording) return;
  for (int k = 0; k < ctx->ntapes; k++)
    if (ctx->tapes[k] == t) {
      memmove(&ctx->tapes[k], &ctx->tapes[k + 1], (size_t)(ctx->ntapes - k - 1) * sizeof *ctx->tapes);
      ctx->ntapes--;
      break;
    }
  if (ctx->ntapes == 0) {  /* nothing records: give the array back */
    free(ctx->tapes);
    ctx->tapes = NULL;
    ctx->cap_tapes = 0;
  }
  t->recording = 0;
}

int mg_tape_recording(const mg_tape *t) { return t->recording; }

int mg_tape_set_persistent(mg_tape *t, int persistent) {
  int old = t->persistent;
  t->persistent = persistent;
  return old;
}

mg_status mg_tape_watch(mg_tape *t, mg_tensor *x) {
  if (!x) return mg_seterror(MG_EARG, "watch: nothing to watch (nil)");
  if (!mg_dtype_is_float((mg_dtype)x->dtype))
    return mg_seterror(MG_EDTYPE, "watch: only float tensors have gradients; got %s (cast it first)",
                       mg_dtype_name((mg_dtype)x->dtype));
  if (t->used && !t->persistent)
    return mg_seterror(MG_ESTATE, "watch: this non-persistent tape was used by gradient()");
  if (!tape_hold(t, mg_identity(x))) return mg_seterror(MG_ENOMEM, "watch: out of memory");
  return MG_OK;
}

void mg_ctx_pause_tapes(mg_ctx *ctx, int pause) { ctx->paused += pause ? 1 : -1; }

/* ---- the backward pass -------------------------------------------------------------- */

/* Turns a rule's gradient into one shaped and typed like the input value:
 * sums broadcast dimensions away and casts back. Steals g. */
static mg_status fit_to_input(mg_ctx *ctx, mg_tensor *g, const mg_tensor *x, mg_tensor **out) {
  mg_status st = MG_OK;
  int base = ctx->index_base;
  if (g->ndim != x->ndim || memcmp(g->shape, x->shape, (size_t)x->ndim * sizeof(int64_t))) {
    mg_attrs a = {.set = 3u};
    int lead = g->ndim - x->ndim, n = 0;
    for (int d = 0; d < g->ndim; d++)
      if (d < lead || (x->shape[d - lead] == 1 && g->shape[d] != 1)) a.v[0].i[n++] = d + base;
    a.v[0].n = n;
    a.v[1].n = 1;
    a.v[1].i[0] = 1;  /* keepdims, then reshape to drop the leading axes */
    mg_tensor *s = g, *r;
    if (n) {
      st = mg_apply(ctx, MG_OP_SUM, &g, 1, &a, &s);
      mg_tensor_release(g);
      if (st) return st;
    }
    mg_attrs ra = {.set = 1u};
    ra.v[0].n = x->ndim;
    memcpy(ra.v[0].i, x->shape, (size_t)x->ndim * sizeof(int64_t));
    st = mg_apply(ctx, MG_OP_RESHAPE, &s, 1, &ra, &r);
    mg_tensor_release(s);
    if (st) return st;
    g = r;
  }
  if (g->dtype != x->dtype) {
    mg_attrs a = {.set = 1u};
    a.v[0].n = 1;
    a.v[0].i[0] = x->dtype;
    mg_tensor *c;
    st = mg_apply(ctx, MG_OP_CAST, &g, 1, &a, &c);
    mg_tensor_release(g);
    if (st) return st;
    g = c;
  }
  *out = g;
  return MG_OK;
}

/* grads[key] += g (steals g). */
static mg_status accumulate(mg_ctx *ctx, ptrmap *grads, const mg_tensor *key, mg_tensor *g) {
  mg_tensor *old = map_get(grads, key);
  if (old) {
    mg_tensor *in[2] = {old, g}, *sum;
    mg_status st = mg_apply(ctx, MG_OP_ADD, in, 2, NULL, &sum);
    mg_tensor_release(g);
    if (st) return st;
    mg_tensor_release(old);
    g = sum;
  }
  if (!map_put(grads, key, g)) {
    mg_tensor_release(g);
    return mg_seterror(MG_ENOMEM, "gradient: out of memory");
  }
  return MG_OK;
}

static mg_status ones_like(mg_ctx *ctx, const mg_tensor *x, mg_tensor **out) {
  mg_attrs a = {.set = 7u};
  a.v[0].n = x->ndim;
  memcpy(a.v[0].i, x->shape, (size_t)x->ndim * sizeof(int64_t));
  a.v[1].n = 1;
  a.v[1].f = 1.0;
  a.v[2].n = 1;
  a.v[2].i[0] = x->dtype;
  return mg_apply(ctx, MG_OP_FULL, NULL, 0, &a, out);
}

/* ---- values written in place after they were recorded --------------------------------- */

/* Value j of r (its inputs, then its outputs): the tensor and whether its
 * buffer was written since r recorded it. */
static mg_tensor *saved_value(const record *r, int j) { return j < r->nin ? r->vals[j] : r->outs[j - r->nin]; }
static int written_since(const record *r, int j) {
  const mg_tensor *t = saved_value(r, j);
  return t->storage && mg_storage_version(t->storage) != r->vers[j];
}

static mg_status inplace_error(const record *r, int j) {
  const mg_tensor *t = saved_value(r, j);
  char sb[MG_SHAPE_BUF], what[64];
  const char *op = r->op < MG_OP_COUNT ? mg_op_info(r->op)->name : r->group ? "a staged call" : "a custom gradient";
  if (j < r->nin) snprintf(what, sizeof what, "input %d", j + 1);
  else snprintf(what, sizeof what, r->nout > 1 ? "output %d" : "the output", j - r->nin + 1);
  return mg_seterror(MG_ESTATE,
                     "gradient: %s of %s (a %s %s tensor%s%s) was modified by an in-place operation after "
                     "%s was recorded: its buffer is at version %u, the tape saved version %u; take the "
                     "gradient before writing into the tensor, or write into a copy (t:clone())",
                     what, op, mg_dtype_name((mg_dtype)t->dtype), mg_shape_str(t->ndim, t->shape, sb, sizeof sb),
                     r->where ? ", recorded at " : "", r->where ? r->where : "", op,
                     mg_storage_version(t->storage), r->vers[j]);
}

/* The inputs of op record r as its kernel saw them: *out is NULL when infer asks for no cast,
 * else an array (small, or malloc'd) with the cast inputs (new references) and the others
 * borrowed from vals. */
static mg_status promote_inputs(mg_ctx *ctx, const record *r, const mg_attrs *a, mg_tensor *const *vals,
                                mg_tensor **small, mg_tensor ***out) {
  mg_meta m;
  m.cast_rest = MG_NDTYPES;
  for (int i = 0; i < MG_CAST_SLOTS; i++) m.cast[i] = MG_NDTYPES;
  mg_call call = {ctx, r->op, mg_op_info(r->op), vals, r->nin, a};
  *out = NULL;
  if (mg_op_infer(r->op)(&call, &m)) return MG_OK;  /* it passed when recorded: keep the values as they are */
  mg_status st = MG_OK;
  for (int i = 0; i < r->nin && !st; i++) {
    mg_dtype want = i < MG_CAST_SLOTS ? m.cast[i] : m.cast_rest;
    int weak = (vals[i]->flags & MG_TF_WEAK) != 0;  /* a Lua number: in the rule's own ops it would stay weak */
    if (want == MG_NDTYPES && weak) want = mg_dtype_is_float(m.dtype) ? m.dtype : (mg_dtype)vals[i]->dtype;
    if (want == MG_NDTYPES || (want == (mg_dtype)vals[i]->dtype && !weak)) continue;
    if (!*out) {
      *out = r->nin <= 8 ? small : malloc((size_t)r->nin * sizeof **out);
      if (!*out) return mg_seterror(MG_ENOMEM, "gradient: out of memory");
      for (int k = 0; k < r->nin; k++) (*out)[k] = vals[k];
    }
    mg_attrs ca = {.set = 1u};
    ca.v[0].n = 1;
    ca.v[0].i[0] = want;
    st = mg_apply(ctx, MG_OP_CAST, &vals[i], 1, &ca, &(*out)[i]);
    if (st) (*out)[i] = vals[i];
  }
  if (st && *out) {
    for (int i = 0; i < r->nin; i++)
      if ((*out)[i] != vals[i]) mg_tensor_release((*out)[i]);
    if (*out != small) free(*out);
    *out = NULL;
  }
  return st;
}

/* Runs r's gradient rule. An op rule whose saved values were written since
 * gets storage-less stand-ins for them: reading one fails (mg_apply refuses
 * a tensor with no storage), and that failure is reported as the in-place
 * write it is; a rule that only needs their shapes still runs. Custom and
 * group rules read what their closures hold, so any write is an error. */
static mg_status run_rule(mg_ctx *ctx, record *r, mg_tensor *const *gouts, const unsigned char *need,
                          mg_tensor **gin) {
  mg_tensor *gout = gouts[0];
  int nsaved = r->nin + r->nout, first_written = -1;
  for (int i = 0; i < r->nin; i++) gin[i] = NULL;
  for (int j = 0; j < nsaved && first_written < 0; j++)
    if (written_since(r, j)) first_written = j;
  if (first_written >= 0 && (r->group || r->custom)) return inplace_error(r, first_written);
  if (r->group) return r->group(r->ud, r->nout, gouts, r->nin, need, gin);
  if (r->custom) return r->custom(r->ud, gout, r->nin, gin);
  mg_attrs a;
  if (r->attrs) a = *r->attrs;
  else a.set = 0;
  mg_attrs_defaults(r->op, &a);
  mg_tensor *const *vals = r->vals, *out = r->out, *small[8], **stand = NULL;
  if (first_written >= 0) {
    stand = nsaved <= 8 ? small : malloc((size_t)nsaved * sizeof *stand);
    if (!stand) return mg_seterror(MG_ENOMEM, "gradient: out of memory");
    for (int j = 0; j < nsaved; j++) {
      mg_tensor *t = saved_value(r, j);
      stand[j] = t;
      if (written_since(r, j) && !(stand[j] = mg_tensor_header((mg_dtype)t->dtype, t->ndim, t->shape))) {
        for (int k = 0; k < j; k++)
          if (stand[k] != saved_value(r, k)) mg_tensor_release(stand[k]);
        if (stand != small) free(stand);
        return mg_seterror(MG_ENOMEM, "gradient: out of memory");
      }
    }
    vals = stand;
    out = stand[r->nin];
  }
  /* The rule sees the inputs as the kernel did: cast to the dtype infer asked for (a float32
   * operand of a float64 op is float64 there), so a mixed-dtype op's gradient carries no
   * float32 rounding; fit_to_input casts each gradient back to its input's dtype. */
  mg_tensor *promoted_small[8], **promoted = NULL;
  mg_status st = promote_inputs(ctx, r, &a, vals, promoted_small, &promoted);
  if (st) {
    if (stand) st = inplace_error(r, first_written);
  } else {
    mg_grad_call g = {ctx, r->op, mg_op_info(r->op), r->nin, promoted ? promoted : vals, out, &a, gout, need, gin};
    st = mg_op_grad(r->op)(&g);
  }
  if (promoted) {
    for (int i = 0; i < r->nin; i++)
      if (promoted[i] != vals[i]) mg_tensor_release(promoted[i]);
    if (promoted != promoted_small) free(promoted);
  }
  if (stand) {
    if (st) st = inplace_error(r, first_written);  /* the rule (or a cast) read one (or failed on their account) */
    for (int j = 0; j < nsaved; j++)
      if (stand[j] != saved_value(r, j)) mg_tensor_release(stand[j]);
    if (stand != small) free(stand);
  }
  return st;
}

/* Walks the records backward from the seeded gradients. */
static mg_status backward(mg_tape *t, ptrmap *relevant, ptrmap *grads) {
  mg_status st = MG_OK;
  mg_ctx *ctx = t->ctx;
  for (size_t k = t->nrecs; k-- > 0 && !st;) {
    record *r = t->recs[k];
    if (!r->nin || !map_get(relevant, r)) continue;
    mg_tensor *gout_small[1], **gouts = r->nout <= 1 ? gout_small : malloc((size_t)r->nout * sizeof *gouts);
    if (!gouts) return mg_seterror(MG_ENOMEM, "gradient: out of memory");
    int reached = 0;
    for (int o = 0; o < r->nout; o++) reached |= (gouts[o] = map_get(grads, r->outs[o])) != NULL;
    if (!reached) {
      if (gouts != gout_small) free(gouts);
      continue;
    }
    unsigned char need_small[8], *need = r->nin <= 8 ? need_small : malloc((size_t)r->nin);
    mg_tensor *gin_small[8], **gin = r->nin <= 8 ? gin_small : malloc((size_t)r->nin * sizeof *gin);
    if (!need || !gin) {
      st = mg_seterror(MG_ENOMEM, "gradient: out of memory");
    } else {
      int any = 0;
      for (int i = 0; i < r->nin; i++) any |= need[i] = map_get(relevant, r->ids[i]) != NULL &&
                                                      mg_dtype_is_float((mg_dtype)r->ids[i]->dtype);
      if (any) st = run_rule(ctx, r, gouts, need, gin);
      for (int i = 0; any && i < r->nin; i++) {
        if (!gin[i]) continue;
        mg_tensor *fit;
        if (st || !need[i]) {
          mg_tensor_release(gin[i]);
          continue;
        }
        if (!(st = fit_to_input(ctx, gin[i], r->vals[i], &fit))) st = accumulate(ctx, grads, r->ids[i], fit);
      }
    }
    if (need != need_small) free(need);
    if (gin != gin_small) free(gin);
    if (gouts != gout_small) free(gouts);
  }
  return st;
}

mg_status mg_tape_gradient(mg_tape *t, int ntargets, mg_tensor *const *targets,
                           mg_tensor *const *output_grads, int nsources, mg_tensor *const *sources,
                           int unconnected_zero, mg_tensor **grads_out) {
  mg_ctx *ctx = t->ctx;
  mg_status st = MG_OK;
  if (t->used && !t->persistent)
    return mg_seterror(MG_ESTATE, "gradient: a non-persistent GradientTape can compute gradients only once "
                                  "(its records are released); use GradientTape{persistent=true}");
  if (t->crossed || t->pending)  /* a silent nil would be a wrong answer: say what is missing */
    return mg_seterror(MG_ESTATE, "gradient: this tape took ops inside a staged cond/while node that has no "
                                  "gradient record (one built with core.trace_cond/core.trace_while directly "
                                  "rather than mg.cond, mg.while_loop or AutoGraph); build it with those, or "
                                  "put the tape around the call of the staged function");
  for (int i = 0; i < nsources; i++) {
    grads_out[i] = NULL;
    if (!mg_dtype_is_float((mg_dtype)sources[i]->dtype))
      return mg_seterror(MG_EDTYPE, "gradient: source %d has dtype %s; only float tensors have gradients",
                         i + 1, mg_dtype_name((mg_dtype)sources[i]->dtype));
  }
  /* forward marking: which records (and tensors) depend on a source */
  ptrmap relevant = {0}, grads = {0};
  for (int i = 0; i < nsources; i++) map_put(&relevant, mg_identity(sources[i]), (void *)1);
  for (size_t k = 0; k < t->nrecs; k++) {
    record *r = t->recs[k];
    for (int i = 0; i < r->nin; i++)
      if (map_get(&relevant, r->ids[i])) {
        map_put(&relevant, r, (void *)1);
        for (int o = 0; o < r->nout; o++) map_put(&relevant, r->outs[o], (void *)1);
        break;
      }
  }
  int was_recording = t->recording;
  if (was_recording) mg_tape_stop(t);  /* the backward pass is not recorded on this tape */
  for (int i = 0; i < ntargets && !st; i++) {
    mg_tensor *seed;
    if (!mg_dtype_is_float((mg_dtype)targets[i]->dtype)) continue;  /* no gradient flows from ints */
    if (output_grads && output_grads[i]) {
      seed = output_grads[i];
      mg_tensor_retain(seed);
    } else if ((st = ones_like(ctx, targets[i], &seed))) {
      break;
    }
    st = accumulate(ctx, &grads, mg_identity(targets[i]), seed);
  }
  if (!st) st = backward(t, &relevant, &grads);
  for (int i = 0; i < nsources && !st; i++) {
    mg_tensor *id = mg_identity(sources[i]);  /* a tensor this tape never tracked gets none (TF) */
    mg_tensor *g = map_get(&t->tracked, id) ? map_get(&grads, id) : NULL;
    if (g) {
      mg_tensor_retain(g);
      grads_out[i] = g;
    } else if (unconnected_zero) {
      mg_attrs a = {.set = 7u};
      a.v[0].n = sources[i]->ndim;
      memcpy(a.v[0].i, sources[i]->shape, (size_t)sources[i]->ndim * sizeof(int64_t));
      a.v[1].n = 1;
      a.v[1].f = 0.0;
      a.v[2].n = 1;
      a.v[2].i[0] = sources[i]->dtype;
      st = mg_apply(ctx, MG_OP_FULL, NULL, 0, &a, &grads_out[i]);
    }
  }
  for (size_t i = 0; i < grads.cap; i++)
    if (grads.keys[i]) mg_tensor_release(grads.vals[i]);
  map_free(&grads);
  map_free(&relevant);
  if (st)
    for (int i = 0; i < nsources; i++) {
      mg_tensor_release(grads_out[i]);
      grads_out[i] = NULL;
    }
  if (was_recording && !(st == MG_OK && !t->persistent)) mg_tape_start(t);
  if (!t->persistent) {  /* a one-shot tape releases its records now */
    t->used = 1;
    tape_clear(t);
  }
  return st;
}

int mg_tapes_active(const mg_ctx *ctx) { return ctx->ntapes > 0 && !ctx->paused; }
