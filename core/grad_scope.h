/*
 * grad_scope.h — what the gradient-rule files (grad.c, grad_nn.c) share: the
 * scope (gs) that collects a rule's temporaries and its first error, the
 * mg_apply wrappers rules are written with, attribute builders and the
 * RULE/SET shorthands. Everything is static inline so each file takes only
 * what it uses.
 */
#ifndef MG_GRAD_SCOPE_H
#define MG_GRAD_SCOPE_H

#include "internal.h"

#define GS_MAX 48

typedef struct gs {
  mg_ctx *ctx;
  mg_status st;
  int n;
  mg_tensor *tmp[GS_MAX];
} gs;

static inline gs gs_begin(const mg_grad_call *g) {
  gs s;
  s.ctx = g->ctx;
  s.st = MG_OK;
  s.n = 0;
  return s;
}

static inline mg_tensor *keep(gs *s, mg_tensor *t) {
  if (s->n == GS_MAX) {  /* a rule bigger than the scope: a bug, not user input */
    mg_tensor_release(t);
    s->st = mg_seterror(MG_ENOMEM, "gradient: rule scope overflow");
    return NULL;
  }
  s->tmp[s->n++] = t;
  return t;
}

static inline mg_tensor *app(gs *s, mg_op op, mg_tensor *const *in, int nin, const mg_attrs *a) {
  mg_tensor *out;
  if (s->st) return NULL;
  if ((s->st = mg_apply(s->ctx, op, in, nin, a, &out))) return NULL;
  return keep(s, out);
}

static inline mg_tensor *A1(gs *s, mg_op op, mg_tensor *x) { return app(s, op, &x, 1, NULL); }
static inline mg_tensor *A2(gs *s, mg_op op, mg_tensor *a, mg_tensor *b) {
  mg_tensor *in[2] = {a, b};
  return app(s, op, in, 2, NULL);
}

/* A weakly typed scalar: it takes the dtype of the tensor it meets. */
static inline mg_tensor *S(gs *s, double v) {
  mg_tensor *t;
  if (s->st) return NULL;
  if ((s->st = mg_scalar_f64(v, 1, &t))) return NULL;
  return keep(s, t);
}

static inline mg_tensor *mul(gs *s, mg_tensor *a, mg_tensor *b) { return A2(s, MG_OP_MUL, a, b); }
static inline mg_tensor *mulc(gs *s, mg_tensor *a, double c) { return mul(s, a, S(s, c)); }

/* A new reference for the caller (NULL stays NULL). */
static inline mg_tensor *give(gs *s, mg_tensor *t) {
  if (s->st || !t) return NULL;
  mg_tensor_retain(t);
  return t;
}

static inline mg_status gs_end(gs *s) {
  for (int i = 0; i < s->n; i++) mg_tensor_release(s->tmp[i]);
  return s->st;
}

/* Attribute builders. */
static inline mg_attrs attrs_list(int slot, int n, const int64_t *v) {
  mg_attrs a;
  a.set = 1u << slot;
  a.v[slot].n = n;
  if (n) memcpy(a.v[slot].i, v, (size_t)n * sizeof(int64_t));
  return a;
}

static inline void attrs_add_int(mg_attrs *a, int slot, int64_t v) {
  a->set |= 1u << slot;
  a->v[slot].n = 1;
  a->v[slot].i[0] = v;
}

static inline mg_tensor *reshape(gs *s, mg_tensor *x, int ndim, const int64_t *shape) {
  mg_attrs a = attrs_list(0, ndim, shape);
  return app(s, MG_OP_RESHAPE, &x, 1, &a);
}

static inline mg_tensor *zeros(gs *s, const mg_tensor *like) {
  mg_attrs a = attrs_list(0, like->ndim, like->shape);
  a.set |= 6u;
  a.v[1].n = 1;
  a.v[1].f = 0.0;
  a.v[2].n = 1;
  a.v[2].i[0] = like->dtype;
  return app(s, MG_OP_FULL, NULL, 0, &a);
}

static inline int base(const mg_grad_call *g) { return g->ctx->index_base; }

/* An axis attribute value as a 0-based axis of an ndim tensor. */
static inline int norm_axis(const mg_grad_call *g, int64_t a, int ndim) {
  return (int)(a < 0 ? a + ndim : a - base(g));
}

/* Sum over one axis (0-based) with keepdims. */
static inline mg_tensor *sum_keep(gs *s, const mg_grad_call *g, mg_tensor *x, int axis) {
  mg_attrs a = attrs_list(0, 1, (int64_t[]){axis + base(g)});
  attrs_add_int(&a, 1, 1);
  return app(s, MG_OP_SUM, &x, 1, &a);
}

#define NEED(i) (g->need[i])
#define GOUT (g->gout)
#define X (g->in[0])
#define Y (g->in[1])
#define OUT (g->out)
#define RULE(name) mg_status name(const mg_grad_call *g)
#define SET(i, expr) do { if (NEED(i)) g->gin[i] = give(&s, (expr)); } while (0)

/* x with a size-1 axis inserted at (0-based, or negative) position axis. */
static inline mg_tensor *unsqueeze(gs *s, const mg_grad_call *g, mg_tensor *x, int64_t axis) {
  mg_attrs a = {.set = 1u};
  a.v[0].n = 1;
  a.v[0].i[0] = axis < 0 ? axis : axis + base(g);
  return app(s, MG_OP_UNSQUEEZE, &x, 1, &a);
}

#endif
