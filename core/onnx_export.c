/*
 * onnx_export.c — writes a finished graph (a concrete function's optimised
 * graph) as an ONNX model: mg_onnx_export.
 *
 * The walk is over the graph IR itself (graph.h): each value id of a graph
 * gets an ONNX name, each op node becomes one or a few ONNX nodes, constants
 * and Variable reads become initializers (the Variable's current value),
 * fused elementwise nodes are unrolled back into their ops, cond nodes
 * become If (the branches refer to outer names, as ONNX scoping allows) and
 * while nodes become Loop (the condition subgraph is emitted once before
 * the loop and once at the end of the body, since ONNX's Loop carries the
 * condition as a value). Encoding is protobuf-c over the schema subset in
 * core/onnx_subset.proto; every message is allocated from one arena that is
 * freed after packing, so error paths need no per-message cleanup.
 *
 * Conventions translated here: moongrad counts axes and index tensors from
 * the context's index base (1 from Lua) and ONNX from 0; moongrad's conv
 * and pool ops are channels-last (NHWC, filters HWIO) and ONNX's are
 * channels-first, so each conv/pool is wrapped in Transposes; the fused
 * attention op is written as its formula. An op with no
 * ONNX form does not stop the walk: every such op is collected and the
 * export fails once with all of their names.
 */
#include "graph.h"
#include "nn.h"
#include "passes/passes.h"
#include "onnx_subset.pb-c.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t mg_slice_axis(int64_t n, int64_t *begin, int64_t end, int64_t step);

/* ---- the arena and the builder ------------------------------------------------ */

typedef struct ex {
  mg_ctx *ctx;
  int base, opset;
  void **mem;              /* every allocation, freed together */
  size_t nmem, capmem;
  int oom;
  int uid;                 /* fresh names */
  const char *probe_in[MG_PROBE_COUNT];  /* an unknown size: the graph input that has it, and on which axis */
  int probe_axis[MG_PROBE_COUNT];
  char bad[512];           /* ops with no ONNX form, comma separated */
} ex;

typedef struct gb {        /* one ONNX graph being built */
  Onnx__NodeProto **nodes;
  size_t n, cap;
  Onnx__TensorProto **inits;
  size_t ni, capi;
  char **names;            /* per value id of the moongrad graph */
  const mg_graph *g;
} gb;

static void *ar(ex *E, size_t size) {
  if (E->oom) return NULL;
  if (E->nmem == E->capmem) {
    size_t c = E->capmem ? 2 * E->capmem : 256;
    void **m = realloc(E->mem, c * sizeof *m);
    if (!m) { E->oom = 1; return NULL; }
    E->mem = m;
    E->capmem = c;
  }
  void *p = calloc(1, size ? size : 1);
  if (!p) { E->oom = 1; return NULL; }
  E->mem[E->nmem++] = p;
  return p;
}

static char *sdup(ex *E, const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *s = ar(E, strlen(buf) + 1);
  if (s) strcpy(s, buf);
  return s;
}

static char *fresh(ex *E) { return sdup(E, "t%d", E->uid++); }

static void push(ex *E, void ***arr, size_t *n, size_t *cap, void *x) {
  if (!x || E->oom) { E->oom = 1; return; }
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 16;
    void **a = ar(E, c * sizeof *a);
    if (!a) return;
    if (*n) memcpy(a, *arr, *n * sizeof *a);
    *arr = a;
    *cap = c;
  }
  (*arr)[(*n)++] = x;
}

/* A node op_type(ins...) -> one fresh output (or `out` when given). */
static Onnx__NodeProto *node(ex *E, gb *B, const char *op, int nin, const char *const *ins, const char *out) {
  Onnx__NodeProto *n = ar(E, sizeof *n);
  if (!n) return NULL;
  onnx__node_proto__init(n);
  n->op_type = (char *)op;
  n->n_input = (size_t)nin;
  n->input = ar(E, (size_t)(nin ? nin : 1) * sizeof(char *));
  n->n_output = 1;
  n->output = ar(E, sizeof(char *));
  if (!n->input || !n->output) return NULL;
  for (int i = 0; i < nin; i++) n->input[i] = (char *)(ins[i] ? ins[i] : "");
  n->output[0] = out ? (char *)out : fresh(E);
  push(E, (void ***)&B->nodes, &B->n, &B->cap, n);
  return n;
}

static const char *op1(ex *E, gb *B, const char *op, const char *a) {
  Onnx__NodeProto *n = node(E, B, op, 1, &a, NULL);
  return n ? n->output[0] : "";
}
static const char *op2(ex *E, gb *B, const char *op, const char *a, const char *b) {
  const char *ins[2] = {a, b};
  Onnx__NodeProto *n = node(E, B, op, 2, ins, NULL);
  return n ? n->output[0] : "";
}

static Onnx__AttributeProto *attr(ex *E, Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType t) {
  if (!n) return NULL;
  Onnx__AttributeProto *a = ar(E, sizeof *a);
  if (!a) return NULL;
  onnx__attribute_proto__init(a);
  a->name = (char *)name;
  a->has_type = 1;
  a->type = t;
  Onnx__AttributeProto **na = ar(E, (n->n_attribute + 1) * sizeof *na);
  if (!na) return NULL;
  if (n->n_attribute) memcpy(na, n->attribute, n->n_attribute * sizeof *na);
  na[n->n_attribute++] = a;
  n->attribute = na;
  return a;
}
static void attr_i(ex *E, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = attr(E, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  if (a) { a->has_i = 1; a->i = v; }
}
static void attr_f(ex *E, Onnx__NodeProto *n, const char *name, double v) {
  Onnx__AttributeProto *a = attr(E, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  if (a) { a->has_f = 1; a->f = (float)v; }
}
static void attr_s(ex *E, Onnx__NodeProto *n, const char *name, const char *s) {
  Onnx__AttributeProto *a = attr(E, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  if (a) { a->has_s = 1; a->s.data = (uint8_t *)s; a->s.len = strlen(s); }
}
static void attr_is(ex *E, Onnx__NodeProto *n, const char *name, int k, const int64_t *v) {
  Onnx__AttributeProto *a = attr(E, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  if (!a) return;
  a->n_ints = (size_t)k;
  a->ints = ar(E, (size_t)(k ? k : 1) * sizeof(int64_t));
  if (a->ints && k) memcpy(a->ints, v, (size_t)k * sizeof(int64_t));
}
static void attr_g(ex *E, Onnx__NodeProto *n, const char *name, Onnx__GraphProto *g) {
  Onnx__AttributeProto *a = attr(E, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
  if (a) a->g = g;
}

static int onnx_dtype(mg_dtype dt) {
  switch (dt) {
  case MG_FLOAT32: return 1;
  case MG_UINT8: return 2;
  case MG_INT8: return 3;
  case MG_INT16: return 5;
  case MG_INT32: return 6;
  case MG_INT64: return 7;
  case MG_BOOL: return 9;
  case MG_FLOAT16: return 10;
  case MG_FLOAT64: return 11;
  case MG_BFLOAT16: return 16;
  default: return 0;
  }
}

/* An initializer from host data (copied into the arena). */
static Onnx__TensorProto *tensor_proto(ex *E, mg_dtype dt, int ndim, const int64_t *shape, const void *data,
                                       size_t nbytes) {
  Onnx__TensorProto *t = ar(E, sizeof *t);
  if (!t) return NULL;
  onnx__tensor_proto__init(t);
  t->name = fresh(E);
  t->has_data_type = 1;
  t->data_type = onnx_dtype(dt);
  t->n_dims = (size_t)ndim;
  t->dims = ar(E, (size_t)(ndim ? ndim : 1) * sizeof(int64_t));
  if (t->dims && ndim) memcpy(t->dims, shape, (size_t)ndim * sizeof(int64_t));
  t->has_raw_data = 1;
  t->raw_data.len = nbytes;
  t->raw_data.data = ar(E, nbytes);
  if (t->raw_data.data && nbytes) memcpy(t->raw_data.data, data, nbytes);
  return t;
}

static const char *init_data(ex *E, gb *B, mg_dtype dt, int ndim, const int64_t *shape, const void *data,
                             size_t nbytes) {
  Onnx__TensorProto *t = tensor_proto(E, dt, ndim, shape, data, nbytes);
  if (!t) return "";
  push(E, (void ***)&B->inits, &B->ni, &B->capi, t);
  return t->name ? t->name : "";
}

static const char *init_tensor(ex *E, gb *B, const mg_tensor *x) {
  size_t nb = mg_tensor_nbytes(x);
  void *buf = ar(E, nb);
  if (!buf || mg_tensor_copy_to(x, buf, nb)) { E->oom = 1; return ""; }
  return init_data(E, B, (mg_dtype)x->dtype, x->ndim, x->shape, buf, nb);
}

static const char *ints_init(ex *E, gb *B, int n, const int64_t *v) {
  int64_t shape[1] = {n};
  return init_data(E, B, MG_INT64, 1, shape, v, (size_t)n * sizeof(int64_t));
}
static const char *int_scalar(ex *E, gb *B, int64_t v) { return init_data(E, B, MG_INT64, 0, NULL, &v, sizeof v); }

/* A 0-d constant of dtype dt. */
static const char *scalar(ex *E, gb *B, double v, mg_dtype dt) {
  union { float f; double d; int32_t i32; int64_t i64; uint8_t u8; int8_t i8; int16_t i16; uint16_t h; } u;
  size_t nb;
  switch (dt) {
  case MG_FLOAT64: u.d = v; nb = 8; break;
  case MG_INT32: u.i32 = (int32_t)v; nb = 4; break;
  case MG_INT64: u.i64 = (int64_t)v; nb = 8; break;
  case MG_UINT8: case MG_BOOL: u.u8 = (uint8_t)v; nb = 1; break;
  case MG_INT8: u.i8 = (int8_t)v; nb = 1; break;
  case MG_INT16: u.i16 = (int16_t)v; nb = 2; break;
  case MG_FLOAT16: case MG_BFLOAT16: u.h = mg_half_from_f64(dt, v); nb = 2; break;
  default: u.f = (float)v; nb = 4; break;
  }
  return init_data(E, B, dt, 0, NULL, &u, nb);
}

static const char *cast(ex *E, gb *B, const char *x, mg_dtype from, mg_dtype to) {
  if (from == to) return x;
  Onnx__NodeProto *n = node(E, B, "Cast", 1, &x, NULL);
  attr_i(E, n, "to", onnx_dtype(to));
  return n ? n->output[0] : "";
}

static Onnx__ValueInfoProto *value_info(ex *E, const char *name, const mg_gvalue *v) {
  Onnx__ValueInfoProto *vi = ar(E, sizeof *vi);
  Onnx__TypeProto *tp = ar(E, sizeof *tp);
  Onnx__TypeProto__Tensor *tt = ar(E, sizeof *tt);
  Onnx__TensorShapeProto *sp = ar(E, sizeof *sp);
  if (!vi || !tp || !tt || !sp) return NULL;
  onnx__value_info_proto__init(vi);
  onnx__type_proto__init(tp);
  onnx__type_proto__tensor__init(tt);
  onnx__tensor_shape_proto__init(sp);
  vi->name = (char *)name;
  vi->type = tp;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  tt->has_elem_type = 1;
  tt->elem_type = onnx_dtype((mg_dtype)v->dtype);
  tt->shape = sp;
  sp->n_dim = v->ndim;
  sp->dim = ar(E, (size_t)(v->ndim ? v->ndim : 1) * sizeof *sp->dim);
  if (!sp->dim) return NULL;
  for (int d = 0; d < v->ndim; d++) {
    Onnx__TensorShapeProto__Dimension *dm = ar(E, sizeof *dm);
    if (!dm) return NULL;
    onnx__tensor_shape_proto__dimension__init(dm);
    if (mg_is_probe(v->shape[d])) {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      dm->dim_param = sdup(E, "d%lld", (long long)(MG_PROBE_BASE - v->shape[d]));
    } else {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dm->dim_value = v->shape[d];
    }
    sp->dim[d] = dm;
  }
  return vi;
}

static void unsupported(ex *E, const char *what) {
  char key[64];
  snprintf(key, sizeof key, "%s", what && what[0] ? what : "(unnamed)");
  /* each name once */
  const char *p = E->bad;
  size_t kl = strlen(key);
  while ((p = strstr(p, key))) {
    if ((p == E->bad || p[-2] == ',') && (p[kl] == ',' || p[kl] == 0)) return;
    p += kl;
  }
  size_t len = strlen(E->bad);
  snprintf(E->bad + len, sizeof E->bad - len, "%s%s", len ? ", " : "", key);
}

/* ---- ops ------------------------------------------------------------------------- */

static int axis0(const ex *E, int64_t a, int ndim) { return (int)(a < 0 ? a + ndim : a - E->base); }

static const mg_gvalue *val(const gb *B, int v) { return &B->g->values[v]; }

/* The node's inputs as names, cast to dt when their value has another dtype. */
static const char *in_as(ex *E, gb *B, const mg_gnode *n, int k, mg_dtype dt) {
  return cast(E, B, B->names[n->in[k]], (mg_dtype)val(B, n->in[k])->dtype, dt);
}

/* Reduce over axes (0-based list; k == 0: all) with keepdims; opset 18 takes axes as an input. */
static const char *reduce(ex *E, gb *B, const char *op, const char *x, int k, const int64_t *axes, int keep) {
  Onnx__NodeProto *n;
  if (k == 0) {
    n = node(E, B, op, 1, &x, NULL);
  } else if (E->opset >= 18 || !strcmp(op, "ReduceSum")) {
    const char *ins[2] = {x, ints_init(E, B, k, axes)};
    n = node(E, B, op, 2, ins, NULL);
  } else {
    n = node(E, B, op, 1, &x, NULL);
    attr_is(E, n, "axes", k, axes);
  }
  attr_i(E, n, "keepdims", keep);
  return n ? n->output[0] : "";
}

/* The axes attribute in slot k as 0-based axes of an ndim tensor (count into *na; 0 = all). */
static void axes_of(const ex *E, const mg_attrs *a, int k, int ndim, int64_t *out, int *na) {
  *na = a->v[k].n;
  for (int i = 0; i < *na; i++) out[i] = axis0(E, a->v[k].i[i], ndim);
}

/* A list attribute of one or nsp numbers as nsp numbers (absent: dflt). */
static void per_axis(const mg_attrs *a, int k, int nsp, int64_t dflt, int64_t *out) {
  for (int i = 0; i < nsp; i++)
    out[i] = a->v[k].n == 0 ? dflt : a->v[k].n == 1 ? a->v[k].i[0] : a->v[k].i[i < a->v[k].n ? i : 0];
}

static const char *transpose(ex *E, gb *B, const char *x, int n, const int64_t *perm) {
  Onnx__NodeProto *nd = node(E, B, "Transpose", 1, &x, NULL);
  attr_is(E, nd, "perm", n, perm);
  return nd ? nd->output[0] : "";
}

/* A shape as an int64 1-D value: a constant, or, where a size is unknown (a probe), that size read at run time
 * from the graph input it came from (Shape -> Gather), concatenated with the known runs. NULL when a probe has
 * no graph input to read it from. */
static const char *shape_value(ex *E, gb *B, int ndim, const int64_t *shape) {
  const char *parts[MG_MAX_DIMS];
  int np = 0, probes = 0;
  for (int d = 0; d < ndim; d++) probes += mg_is_probe(shape[d]);
  if (!probes) return ints_init(E, B, ndim, shape);
  for (int d = 0; d < ndim;) {
    if (mg_is_probe(shape[d])) {
      int p = (int)(MG_PROBE_BASE - shape[d]);
      if (!E->probe_in[p]) return NULL;
      int64_t axis = E->probe_axis[p];
      Onnx__NodeProto *gn = node(E, B, "Gather", 2, (const char *[]){op1(E, B, "Shape", E->probe_in[p]),
                                                                     ints_init(E, B, 1, &axis)}, NULL);
      attr_i(E, gn, "axis", 0);
      parts[np++] = gn ? gn->output[0] : "";
      d++;
    } else {
      int e = d;
      while (e < ndim && !mg_is_probe(shape[e])) e++;
      parts[np++] = ints_init(E, B, e - d, shape + d);
      d = e;
    }
  }
  if (np == 1) return parts[0];
  Onnx__NodeProto *c = node(E, B, "Concat", np, parts, NULL);
  attr_i(E, c, "axis", 0);
  return c ? c->output[0] : "";
}

/* conv / pool: NHWC in moongrad, NCHW in ONNX. kind 0 conv, 1 max pool, 2 avg pool. */
static const char *conv_like(ex *E, gb *B, const mg_gnode *n, int nsp, int kind) {
  const mg_attrs *a = n->attrs;
  int64_t px[5], pw[5], back[5];
  px[0] = 0, px[1] = nsp + 1;
  back[0] = 0, back[nsp + 1] = 1;
  for (int i = 0; i < nsp; i++) px[i + 2] = i + 1, back[i + 1] = i + 2;
  pw[0] = nsp + 1, pw[1] = nsp;
  for (int i = 0; i < nsp; i++) pw[i + 2] = i;
  const char *x = transpose(E, B, B->names[n->in[0]], nsp + 2, px);
  int ks = kind == 0 ? 0 : 0, kst = kind == 0 ? 0 : 1, kpad = kst + 1, kdil = kpad + 1, kexp = kdil + 1;
  if (kind == 0) kexp = 4;
  int64_t strides[3], dil[3], ksize[3], pads[6];
  per_axis(a, kst, nsp, 1, strides);
  per_axis(a, kdil, nsp, 1, dil);
  Onnx__NodeProto *nd;
  if (kind == 0) {
    const char *ins[2] = {x, transpose(E, B, B->names[n->in[1]], nsp + 2, pw)};
    nd = node(E, B, "Conv", 2, ins, NULL);
    attr_i(E, nd, "group", a->v[3].i[0]);
    attr_is(E, nd, "dilations", nsp, dil);
  } else {
    per_axis(a, ks, nsp, 2, ksize);
    if (a->v[kst].n == 0) memcpy(strides, ksize, sizeof strides);
    nd = node(E, B, kind == 1 ? "MaxPool" : "AveragePool", 1, &x, NULL);
    attr_is(E, nd, "kernel_shape", nsp, ksize);
    int dilated = 0;
    for (int i = 0; i < nsp; i++) dilated |= dil[i] != 1;
    if (kind == 1 && dilated) attr_is(E, nd, "dilations", nsp, dil);
    if (kind == 2 && dilated) unsupported(E, "avg_pool with dilation");
    if (kind == 2) attr_i(E, nd, "count_include_pad", a->v[5].i[0]);
  }
  attr_is(E, nd, "strides", nsp, strides);
  int pad = (int)a->v[kpad].i[0];
  if (pad == MG_PAD_SAME) {
    attr_s(E, nd, "auto_pad", "SAME_UPPER");
  } else if (pad == MG_PAD_EXPLICIT) {
    for (int i = 0; i < nsp; i++) pads[i] = a->v[kexp].i[2 * i], pads[nsp + i] = a->v[kexp].i[2 * i + 1];
    attr_is(E, nd, "pads", 2 * nsp, pads);
  }
  return transpose(E, B, nd ? nd->output[0] : "", nsp + 2, back);
}

static const char *unary_name(mg_op op) {
  switch (op) {
  case MG_OP_NEG: return "Neg";
  case MG_OP_ABS: return "Abs";
  case MG_OP_SIGN: return "Sign";
  case MG_OP_EXP: return "Exp";
  case MG_OP_LOG: return "Log";
  case MG_OP_SQRT: return "Sqrt";
  case MG_OP_SIN: return "Sin";
  case MG_OP_COS: return "Cos";
  case MG_OP_TAN: return "Tan";
  case MG_OP_TANH: return "Tanh";
  case MG_OP_SIGMOID: return "Sigmoid";
  case MG_OP_RELU: return "Relu";
  case MG_OP_SOFTPLUS: return "Softplus";
  case MG_OP_ERF: return "Erf";
  case MG_OP_FLOOR: return "Floor";
  case MG_OP_CEIL: return "Ceil";
  case MG_OP_ROUND: return "Round";
  case MG_OP_ASIN: return "Asin";
  case MG_OP_ACOS: return "Acos";
  case MG_OP_ATAN: return "Atan";
  case MG_OP_SINH: return "Sinh";
  case MG_OP_COSH: return "Cosh";
  case MG_OP_ASINH: return "Asinh";
  case MG_OP_ACOSH: return "Acosh";
  case MG_OP_ATANH: return "Atanh";
  case MG_OP_RECIPROCAL: return "Reciprocal";
  case MG_OP_HARD_SWISH: return "HardSwish";
  default: return NULL;
  }
}

static const char *binary_name(mg_op op) {
  switch (op) {
  case MG_OP_ADD: return "Add";
  case MG_OP_SUB: return "Sub";
  case MG_OP_MUL: return "Mul";
  case MG_OP_DIV: return "Div";
  case MG_OP_POW: return "Pow";
  case MG_OP_MAXIMUM: return "Max";
  case MG_OP_MINIMUM: return "Min";
  case MG_OP_MATMUL: return "MatMul";
  default: return NULL;
  }
}

static const char *compare_name(mg_op op) {
  switch (op) {
  case MG_OP_EQUAL: return "Equal";
  case MG_OP_LESS: return "Less";
  case MG_OP_LESS_EQUAL: return "LessOrEqual";
  case MG_OP_GREATER: return "Greater";
  case MG_OP_GREATER_EQUAL: return "GreaterOrEqual";
  case MG_OP_NOT_EQUAL: return "Equal";  /* then Not */
  default: return NULL;
  }
}

/* dot_product_attention: Keras's layout (batch, T, heads, D) and the op's packed result (the output with each
 * row's logsumexp as a last column), as MatMul, softmax by logsumexp and MatMul. */
static const char *attention(ex *E, gb *B, const mg_gnode *n) {
  const mg_gvalue *q = val(B, n->in[0]), *k = val(B, n->in[1]);
  mg_dtype dt = (mg_dtype)val(B, n->out0)->dtype;
  if (q->shape[2] != k->shape[2]) return NULL;  /* grouped heads: not translated */
  static const int64_t bhtd[4] = {0, 2, 1, 3}, bhdt[4] = {0, 2, 3, 1};
  double scale = (n->attrs->set & 1u) ? n->attrs->v[0].f : 1.0 / sqrt((double)q->shape[3]);
  const char *qt = transpose(E, B, in_as(E, B, n, 0, dt), 4, bhtd);
  const char *kt = transpose(E, B, in_as(E, B, n, 1, dt), 4, bhdt);
  const char *vt = transpose(E, B, in_as(E, B, n, 2, dt), 4, bhtd);
  const char *sc = op2(E, B, "Mul", op2(E, B, "MatMul", qt, kt), scalar(E, B, scale, dt));
  const char *keep = n->nin > 3 ? in_as(E, B, n, 3, MG_BOOL) : NULL;
  if (n->attrs->v[1].i[0]) {  /* causal: key j <= query i */
    int64_t tq = q->shape[1], tk = k->shape[1], shape[2] = {tq, tk};
    if (mg_is_probe(tq) || mg_is_probe(tk)) return NULL;
    uint8_t *tri = ar(E, (size_t)(tq * tk) + 1);
    if (!tri) return "";
    for (int64_t i = 0; i < tq; i++)
      for (int64_t j = 0; j < tk; j++) tri[i * tk + j] = j <= i;
    const char *c = init_data(E, B, MG_BOOL, 2, shape, tri, (size_t)(tq * tk));
    keep = keep ? op2(E, B, "And", keep, c) : c;
  }
  if (keep) {
    const char *ins[3] = {keep, sc, scalar(E, B, -INFINITY, dt)};
    Onnx__NodeProto *w = node(E, B, "Where", 3, ins, NULL);
    sc = w ? w->output[0] : "";
  }
  int64_t last = -1;
  const char *lse = reduce(E, B, "ReduceLogSumExp", sc, 1, &last, 1);
  const char *o = op2(E, B, "MatMul", op1(E, B, "Exp", op2(E, B, "Sub", sc, lse)), vt);
  Onnx__NodeProto *cat = node(E, B, "Concat", 2, (const char *[]){o, lse}, NULL);
  attr_i(E, cat, "axis", -1);
  return transpose(E, B, cat ? cat->output[0] : "", 4, bhtd);
}

/* One op node; returns the name of its (single) output, or NULL when the op has no ONNX form. */
static const char *emit_op(ex *E, gb *B, const mg_gnode *n) {
  const mg_gvalue *o = val(B, n->out0);
  mg_dtype dt = (mg_dtype)o->dtype;
  const mg_attrs *a = n->attrs;
  const mg_gvalue *x0 = n->nin > 0 ? val(B, n->in[0]) : NULL;
  int nd0 = x0 ? x0->ndim : 0;
  const char *nm;
  int64_t list[MG_MAX_DIMS * 2 + 2];
  int k;
  if ((nm = unary_name(n->op))) return op1(E, B, nm, in_as(E, B, n, 0, dt));
  if ((nm = binary_name(n->op)))
    return op2(E, B, nm, in_as(E, B, n, 0, dt), in_as(E, B, n, 1, dt));
  if ((nm = compare_name(n->op))) {
    mg_dtype p = mg_promote((mg_dtype)x0->dtype, (mg_dtype)val(B, n->in[1])->dtype);
    const char *r = op2(E, B, nm, in_as(E, B, n, 0, p), in_as(E, B, n, 1, p));
    return n->op == MG_OP_NOT_EQUAL ? op1(E, B, "Not", r) : r;
  }
  switch (n->op) {
  case MG_OP_CONTIGUOUS: case MG_OP_STOP_GRADIENT:
    return op1(E, B, "Identity", B->names[n->in[0]]);
  case MG_OP_SQUARE: {
    const char *x = in_as(E, B, n, 0, dt);
    return op2(E, B, "Mul", x, x);
  }
  case MG_OP_RSQRT: return op1(E, B, "Reciprocal", op1(E, B, "Sqrt", in_as(E, B, n, 0, dt)));
  case MG_OP_EXPM1: return op2(E, B, "Sub", op1(E, B, "Exp", in_as(E, B, n, 0, dt)), scalar(E, B, 1, dt));
  case MG_OP_LOG1P: return op1(E, B, "Log", op2(E, B, "Add", in_as(E, B, n, 0, dt), scalar(E, B, 1, dt)));
  case MG_OP_LOG2: return op2(E, B, "Div", op1(E, B, "Log", in_as(E, B, n, 0, dt)), scalar(E, B, log(2.0), dt));
  case MG_OP_LOG10: return op2(E, B, "Div", op1(E, B, "Log", in_as(E, B, n, 0, dt)), scalar(E, B, log(10.0), dt));
  case MG_OP_EXP2: return op2(E, B, "Pow", scalar(E, B, 2, dt), in_as(E, B, n, 0, dt));
  case MG_OP_LOG_SIGMOID:
    return op1(E, B, "Neg", op1(E, B, "Softplus", op1(E, B, "Neg", in_as(E, B, n, 0, dt))));
  case MG_OP_ELU: case MG_OP_CELU: case MG_OP_LEAKY_RELU: {
    Onnx__NodeProto *r = node(E, B, n->op == MG_OP_ELU ? "Elu" : n->op == MG_OP_CELU ? "Celu" : "LeakyRelu", 1,
                              (const char *[]){in_as(E, B, n, 0, dt)}, NULL);
    attr_f(E, r, "alpha", a->v[0].f);
    return r ? r->output[0] : "";
  }
  case MG_OP_HARD_SIGMOID: {
    Onnx__NodeProto *r = node(E, B, "HardSigmoid", 1, (const char *[]){in_as(E, B, n, 0, dt)}, NULL);
    attr_f(E, r, "alpha", 1.0 / 6.0);
    attr_f(E, r, "beta", 0.5);
    return r ? r->output[0] : "";
  }
  case MG_OP_GELU: {
    const char *x = in_as(E, B, n, 0, dt);
    if (E->opset >= 20) {
      Onnx__NodeProto *r = node(E, B, "Gelu", 1, &x, NULL);
      if (a->v[0].i[0]) attr_s(E, r, "approximate", "tanh");
      return r ? r->output[0] : "";
    }
    const char *inner;
    if (!a->v[0].i[0]) {
      inner = op1(E, B, "Erf", op2(E, B, "Mul", x, scalar(E, B, 0.70710678118654752440, dt)));
    } else {
      const char *x3 = op2(E, B, "Mul", op2(E, B, "Mul", x, x), x);
      const char *s = op2(E, B, "Add", x, op2(E, B, "Mul", x3, scalar(E, B, 0.044715, dt)));
      inner = op1(E, B, "Tanh", op2(E, B, "Mul", s, scalar(E, B, 0.79788456080286535588, dt)));
    }
    const char *h = op2(E, B, "Mul", x, scalar(E, B, 0.5, dt));
    return op2(E, B, "Mul", h, op2(E, B, "Add", scalar(E, B, 1, dt), inner));
  }
  case MG_OP_ISNAN: return op1(E, B, "IsNaN", B->names[n->in[0]]);
  case MG_OP_ISINF: return op1(E, B, "IsInf", B->names[n->in[0]]);
  case MG_OP_LOGICAL_NOT: return op1(E, B, "Not", in_as(E, B, n, 0, MG_BOOL));
  case MG_OP_LOGICAL_AND: case MG_OP_LOGICAL_OR: case MG_OP_LOGICAL_XOR:
    return op2(E, B, n->op == MG_OP_LOGICAL_AND ? "And" : n->op == MG_OP_LOGICAL_OR ? "Or" : "Xor",
               in_as(E, B, n, 0, MG_BOOL), in_as(E, B, n, 1, MG_BOOL));
  case MG_OP_CAST: return cast(E, B, B->names[n->in[0]], (mg_dtype)x0->dtype, dt);
  case MG_OP_FLOORDIV:
    if (dt != MG_FLOAT32 && dt != MG_FLOAT64) return NULL;
    return op1(E, B, "Floor", op2(E, B, "Div", in_as(E, B, n, 0, dt), in_as(E, B, n, 1, dt)));
  case MG_OP_MOD: case MG_OP_FMOD: {
    const char *x = in_as(E, B, n, 0, dt), *y = in_as(E, B, n, 1, dt);
    int isf = dt == MG_FLOAT32 || dt == MG_FLOAT64;
    if (n->op == MG_OP_MOD && isf)  /* Lua's %: the sign of b */
      return op2(E, B, "Sub", x, op2(E, B, "Mul", op1(E, B, "Floor", op2(E, B, "Div", x, y)), y));
    Onnx__NodeProto *r = node(E, B, "Mod", 2, (const char *[]){x, y}, NULL);
    attr_i(E, r, "fmod", n->op == MG_OP_FMOD);
    return r ? r->output[0] : "";
  }
  case MG_OP_WHERE: {
    const char *ins[3] = {in_as(E, B, n, 0, MG_BOOL), in_as(E, B, n, 1, dt), in_as(E, B, n, 2, dt)};
    Onnx__NodeProto *r = node(E, B, "Where", 3, ins, NULL);
    return r ? r->output[0] : "";
  }
  case MG_OP_CLIP: {
    const char *ins[3] = {in_as(E, B, n, 0, dt), (a->set & 1u) ? scalar(E, B, a->v[0].f, dt) : "",
                          (a->set & 2u) ? scalar(E, B, a->v[1].f, dt) : ""};
    Onnx__NodeProto *r = node(E, B, "Clip", 3, ins, NULL);
    return r ? r->output[0] : "";
  }
  case MG_OP_SUM: case MG_OP_MEAN: case MG_OP_PROD: case MG_OP_MAX: case MG_OP_MIN: case MG_OP_LOGSUMEXP: {
    static const char *names[] = {"ReduceSum", "ReduceMean", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceLogSumExp"};
    int which = n->op == MG_OP_SUM ? 0 : n->op == MG_OP_MEAN ? 1 : n->op == MG_OP_PROD ? 2 : n->op == MG_OP_MAX ? 3
              : n->op == MG_OP_MIN ? 4 : 5;
    axes_of(E, a, 0, nd0, list, &k);
    mg_dtype cdt = (n->op == MG_OP_SUM || n->op == MG_OP_MEAN) ? dt : (mg_dtype)x0->dtype;
    const char *r = reduce(E, B, names[which], in_as(E, B, n, 0, cdt), k, list, (int)a->v[1].i[0]);
    return cast(E, B, r, cdt, dt);
  }
  case MG_OP_VARIANCE: {
    axes_of(E, a, 0, nd0, list, &k);
    const char *x = in_as(E, B, n, 0, dt);
    const char *d = op2(E, B, "Sub", x, reduce(E, B, "ReduceMean", x, k, list, 1));
    const char *r = reduce(E, B, "ReduceMean", op2(E, B, "Mul", d, d), k, list, (int)a->v[1].i[0]);
    if (a->v[2].i[0]) {
      double cnt = 1;
      for (int i = 0; i < (k ? k : nd0); i++) cnt *= (double)x0->shape[k ? list[i] : i];
      r = op2(E, B, "Mul", r, scalar(E, B, cnt / (cnt - (double)a->v[2].i[0]), dt));
    }
    return r;
  }
  case MG_OP_ARGMAX: case MG_OP_ARGMIN: {
    Onnx__NodeProto *r = node(E, B, n->op == MG_OP_ARGMAX ? "ArgMax" : "ArgMin", 1, (const char *[]){B->names[n->in[0]]}, NULL);
    attr_i(E, r, "axis", axis0(E, a->v[0].i[0], nd0));
    attr_i(E, r, "keepdims", a->v[1].i[0]);
    attr_i(E, r, "select_last_index", 0);
    const char *y = r ? r->output[0] : "";
    if (E->base) y = op2(E, B, "Add", y, scalar(E, B, E->base, MG_INT64));
    return cast(E, B, y, MG_INT64, dt);
  }
  case MG_OP_SOFTMAX: case MG_OP_LOG_SOFTMAX: {
    Onnx__NodeProto *r = node(E, B, n->op == MG_OP_SOFTMAX ? "Softmax" : "LogSoftmax", 1,
                              (const char *[]){in_as(E, B, n, 0, dt)}, NULL);
    attr_i(E, r, "axis", axis0(E, a->v[0].i[0], nd0));
    return r ? r->output[0] : "";
  }
  case MG_OP_CUMSUM: {
    const char *ins[2] = {in_as(E, B, n, 0, dt), int_scalar(E, B, axis0(E, a->v[0].i[0], nd0))};
    Onnx__NodeProto *r = node(E, B, "CumSum", 2, ins, NULL);
    attr_i(E, r, "exclusive", a->v[1].i[0]);
    attr_i(E, r, "reverse", a->v[2].i[0]);
    return r ? r->output[0] : "";
  }
  case MG_OP_RESHAPE: case MG_OP_EXPAND: {  /* the result's shape, unknown sizes read at run time */
    const char *sv = shape_value(E, B, o->ndim, o->shape);
    if (!sv) return NULL;
    return op2(E, B, n->op == MG_OP_RESHAPE ? "Reshape" : "Expand", B->names[n->in[0]], sv);
  }
  case MG_OP_FULL: {
    int probes = 0;
    for (int i = 0; i < o->ndim; i++) probes += mg_is_probe(o->shape[i]);
    if (!probes) {  /* a constant: computed now */
      mg_tensor *t = NULL;
      if (mg_apply(E->ctx, MG_OP_FULL, NULL, 0, a, &t)) return NULL;
      const char *r = init_tensor(E, B, t);
      mg_tensor_release(t);
      return r;
    }
    const char *sv = shape_value(E, B, o->ndim, o->shape);
    if (!sv) return NULL;
    mg_tensor *one = NULL;
    mg_attrs a1 = *a;
    a1.v[0].n = 1, a1.v[0].i[0] = 1;  /* shape {1}: the value, as ConstantOfShape wants it */
    if (mg_apply(E->ctx, MG_OP_FULL, NULL, 0, &a1, &one)) return NULL;
    size_t nb = mg_tensor_nbytes(one);
    void *buf = ar(E, nb);
    if (buf) mg_tensor_copy_to(one, buf, nb);
    int64_t shp1[1] = {1};
    Onnx__TensorProto *tv = buf ? tensor_proto(E, dt, 1, shp1, buf, nb) : NULL;
    mg_tensor_release(one);
    Onnx__NodeProto *r = node(E, B, "ConstantOfShape", 1, &sv, NULL);
    Onnx__AttributeProto *at = attr(E, r, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    if (at) at->t = tv;
    return r ? r->output[0] : "";
  }
  case MG_OP_PERMUTE:
    for (int i = 0; i < nd0; i++) list[i] = axis0(E, a->v[0].i[i], nd0);
    return transpose(E, B, B->names[n->in[0]], nd0, list);
  case MG_OP_TRANSPOSE: {
    for (int i = 0; i < nd0; i++) list[i] = i;
    int p = axis0(E, a->v[0].i[0], nd0), q = axis0(E, a->v[1].i[0], nd0);
    list[p] = q, list[q] = p;
    return transpose(E, B, B->names[n->in[0]], nd0, list);
  }
  case MG_OP_SQUEEZE: case MG_OP_UNSQUEEZE: {
    if (n->op == MG_OP_UNSQUEEZE) {
      k = 1;
      list[0] = axis0(E, a->v[0].i[0], nd0 + 1);
    } else {
      axes_of(E, a, 0, nd0, list, &k);
      if (k == 0)
        for (int i = 0; i < nd0; i++)
          if (x0->shape[i] == 1) list[k++] = i;
    }
    return op2(E, B, n->op == MG_OP_SQUEEZE ? "Squeeze" : "Unsqueeze", B->names[n->in[0]], ints_init(E, B, k, list));
  }
  case MG_OP_SLICE: {
    int64_t st[MG_MAX_DIMS], en[MG_MAX_DIMS], sp[MG_MAX_DIMS], ax[MG_MAX_DIMS];
    for (int d = 0; d < nd0; d++) {
      int64_t s = d < a->v[2].n ? a->v[2].i[d] : 1;
      int64_t b = d < a->v[0].n ? a->v[0].i[d] : s > 0 ? 0 : INT64_MAX;
      int64_t e = d < a->v[1].n ? a->v[1].i[d] : s > 0 ? INT64_MAX : INT64_MIN;
      int64_t sz = x0->shape[d];
      mg_slice_axis(sz, &b, e, s);
      if (e < 0) { e += sz; if (e < 0) e = s < 0 ? -1 : 0; } else if (e >= sz) e = s < 0 ? sz - 1 : sz;
      st[d] = b, en[d] = (s < 0 && e < 0) ? INT64_MIN : e, sp[d] = s, ax[d] = d;
    }
    const char *ins[5] = {B->names[n->in[0]], ints_init(E, B, nd0, st), ints_init(E, B, nd0, en),
                          ints_init(E, B, nd0, ax), ints_init(E, B, nd0, sp)};
    Onnx__NodeProto *r = node(E, B, "Slice", 5, ins, NULL);
    return r ? r->output[0] : "";
  }
  case MG_OP_FLIP: {  /* Slice with step -1 over the axes */
    int64_t st[MG_MAX_DIMS], en[MG_MAX_DIMS], sp[MG_MAX_DIMS];
    axes_of(E, a, 0, nd0, list, &k);
    if (a->v[0].n == 0 && !(a->set & 1u))
      for (k = 0; k < nd0; k++) list[k] = k;
    if (k == 0) return op1(E, B, "Identity", B->names[n->in[0]]);
    for (int i = 0; i < k; i++) st[i] = -1, en[i] = INT64_MIN, sp[i] = -1;
    const char *ins[5] = {B->names[n->in[0]], ints_init(E, B, k, st), ints_init(E, B, k, en), ints_init(E, B, k, list),
                          ints_init(E, B, k, sp)};
    Onnx__NodeProto *r = node(E, B, "Slice", 5, ins, NULL);
    return r ? r->output[0] : "";
  }
  case MG_OP_SELECT: {
    int ax = axis0(E, a->v[0].i[0], nd0);
    int64_t i = a->v[1].i[0];
    i = i < 0 ? i + x0->shape[ax] : i - E->base;
    Onnx__NodeProto *r = node(E, B, "Gather", 2, (const char *[]){B->names[n->in[0]], int_scalar(E, B, i)}, NULL);
    attr_i(E, r, "axis", ax);
    return r ? r->output[0] : "";
  }
  case MG_OP_CONCAT: {
    const char **ins = ar(E, (size_t)n->nin * sizeof *ins);
    if (!ins) return "";
    for (int i = 0; i < n->nin; i++) ins[i] = in_as(E, B, n, i, dt);
    Onnx__NodeProto *r = node(E, B, "Concat", n->nin, ins, NULL);
    attr_i(E, r, "axis", axis0(E, a->v[0].i[0], nd0));
    return r ? r->output[0] : "";
  }
  case MG_OP_TAKE: case MG_OP_GATHER: {
    mg_dtype idt = (mg_dtype)val(B, n->in[1])->dtype;
    const char *idx = cast(E, B, B->names[n->in[1]], idt, MG_INT64);
    if (E->base) idx = op2(E, B, "Sub", idx, scalar(E, B, E->base, MG_INT64));
    Onnx__NodeProto *r = node(E, B, n->op == MG_OP_TAKE ? "Gather" : "GatherElements", 2,
                              (const char *[]){B->names[n->in[0]], idx}, NULL);
    attr_i(E, r, "axis", axis0(E, a->v[0].i[0], nd0));
    return r ? r->output[0] : "";
  }
  case MG_OP_SCATTER_ADD: {  /* opset 16: ScatterElements with reduction add */
    if (E->opset < 16) return NULL;
    mg_dtype idt = (mg_dtype)val(B, n->in[1])->dtype;
    const char *idx = cast(E, B, B->names[n->in[1]], idt, MG_INT64);
    if (E->base) idx = op2(E, B, "Sub", idx, scalar(E, B, E->base, MG_INT64));
    const char *ins[3] = {in_as(E, B, n, 0, dt), idx, in_as(E, B, n, 2, dt)};
    Onnx__NodeProto *r = node(E, B, "ScatterElements", 3, ins, NULL);
    attr_i(E, r, "axis", axis0(E, a->v[0].i[0], nd0));
    attr_s(E, r, "reduction", "add");
    return r ? r->output[0] : "";
  }
  case MG_OP_PAD: {
    static const char *modes[] = {"constant", "reflect", "edge"};
    for (int d = 0; d < nd0; d++) list[d] = a->v[0].i[2 * d], list[nd0 + d] = a->v[0].i[2 * d + 1];
    const char *ins[3] = {B->names[n->in[0]], ints_init(E, B, 2 * nd0, list), scalar(E, B, a->v[1].f, dt)};
    Onnx__NodeProto *r = node(E, B, "Pad", 3, ins, NULL);
    attr_s(E, r, "mode", modes[a->v[2].i[0] % 3]);
    return r ? r->output[0] : "";
  }
  case MG_OP_TILE: {
    int nr = a->v[0].n;
    if (nr > nd0) return NULL;
    for (int d = 0; d < nd0; d++) list[d] = d < nd0 - nr ? 1 : a->v[0].i[d - (nd0 - nr)];
    return op2(E, B, "Tile", B->names[n->in[0]], ints_init(E, B, nd0, list));
  }
  case MG_OP_DOT_PRODUCT_ATTENTION: return attention(E, B, n);
  case MG_OP_ISFINITE:
    return op1(E, B, "Not", op2(E, B, "Or", op1(E, B, "IsNaN", in_as(E, B, n, 0, MG_FLOAT32)),
                                op1(E, B, "IsInf", in_as(E, B, n, 0, MG_FLOAT32))));
  case MG_OP_TRUNC:  /* x - fmod(x, 1) */
    if (dt != MG_FLOAT32 && dt != MG_FLOAT64) return op1(E, B, "Identity", B->names[n->in[0]]);
    else {
      Onnx__NodeProto *r = node(E, B, "Mod", 2, (const char *[]){B->names[n->in[0]], scalar(E, B, 1, dt)}, NULL);
      attr_i(E, r, "fmod", 1);
      return op2(E, B, "Sub", B->names[n->in[0]], r ? r->output[0] : "");
    }
  case MG_OP_ALL: case MG_OP_ANY: {  /* over 0/1 as int32 */
    axes_of(E, a, 0, nd0, list, &k);
    const char *x = cast(E, B, in_as(E, B, n, 0, MG_BOOL), MG_BOOL, MG_INT32);
    const char *r = reduce(E, B, n->op == MG_OP_ALL ? "ReduceMin" : "ReduceMax", x, k, list, (int)a->v[1].i[0]);
    return cast(E, B, r, MG_INT32, MG_BOOL);
  }
  case MG_OP_ONE_HOT: {
    mg_dtype idt = (mg_dtype)x0->dtype;
    const char *idx = cast(E, B, B->names[n->in[0]], idt, MG_INT64);
    if (E->base) idx = op2(E, B, "Sub", idx, scalar(E, B, E->base, MG_INT64));
    float vals[2] = {0, 1};
    int64_t two = 2;
    const char *ins[3] = {idx, int_scalar(E, B, a->v[0].i[0]), init_data(E, B, MG_FLOAT32, 1, &two, vals, sizeof vals)};
    Onnx__NodeProto *r = node(E, B, "OneHot", 3, ins, NULL);
    attr_i(E, r, "axis", -1);
    return cast(E, B, r ? r->output[0] : "", MG_FLOAT32, dt);
  }
  case MG_OP_CONV1D: return conv_like(E, B, n, 1, 0);
  case MG_OP_CONV2D: return conv_like(E, B, n, 2, 0);
  case MG_OP_CONV3D: return conv_like(E, B, n, 3, 0);
  case MG_OP_MAX_POOL1D: return conv_like(E, B, n, 1, 1);
  case MG_OP_MAX_POOL2D: return conv_like(E, B, n, 2, 1);
  case MG_OP_MAX_POOL3D: return conv_like(E, B, n, 3, 1);
  case MG_OP_AVG_POOL1D: return conv_like(E, B, n, 1, 2);
  case MG_OP_AVG_POOL2D: return conv_like(E, B, n, 2, 2);
  case MG_OP_AVG_POOL3D: return conv_like(E, B, n, 3, 2);
  case MG_OP_BATCH_NORM: {  /* (x - mean) / sqrt(variance + epsilon) * scale + offset, in that order */
    const char *x = in_as(E, B, n, 0, dt);
    const char *sd = op1(E, B, "Sqrt", op2(E, B, "Add", in_as(E, B, n, 2, dt), scalar(E, B, a->v[0].f, dt)));
    const char *y = op2(E, B, "Div", op2(E, B, "Sub", x, in_as(E, B, n, 1, dt)), sd);
    return op2(E, B, "Add", op2(E, B, "Mul", y, in_as(E, B, n, 4, dt)), in_as(E, B, n, 3, dt));
  }
  default: return NULL;
  }
}

/* ---- graphs ------------------------------------------------------------------------- */

static mg_status emit_graph(ex *E, gb *B, const mg_graph *g, char **outer);

/* The nodes of subgraph g emitted into B, its placeholders named by `inputs`
 * (NULL: none) and its captures by the parent's names; returns g's output names. */
static char **inline_graph(ex *E, gb *B, const mg_graph *g, char **outer, char **inputs) {
  char **names = ar(E, (size_t)(g->nvalues ? g->nvalues : 1) * sizeof *names);
  if (!names) return NULL;
  for (int i = 0; inputs && i < g->ninputs; i++) names[g->inputs[i]] = inputs[i];
  for (int c = 0; c < g->ncaptures; c++) names[g->captures[c].inner] = outer[g->captures[c].outer];
  gb sub = *B;
  sub.names = names;
  sub.g = g;
  if (emit_graph(E, &sub, g, outer)) return NULL;
  B->nodes = sub.nodes, B->n = sub.n, B->cap = sub.cap;
  B->inits = sub.inits, B->ni = sub.ni, B->capi = sub.capi;
  char **outs = ar(E, (size_t)(g->noutputs ? g->noutputs : 1) * sizeof *outs);
  if (!outs) return NULL;
  for (int k = 0; k < g->noutputs; k++) outs[k] = names[g->outputs[k]];
  return outs;
}

static Onnx__GraphProto *finish_graph(ex *E, gb *B, const char *name) {
  Onnx__GraphProto *gp = ar(E, sizeof *gp);
  if (!gp) return NULL;
  onnx__graph_proto__init(gp);
  gp->name = (char *)name;
  gp->n_node = B->n;
  gp->node = B->nodes;
  gp->n_initializer = B->ni;
  gp->initializer = B->inits;
  return gp;
}

/* A one-element value as the bool scalar If and Loop want. */
static const char *bool_scalar(ex *E, gb *B, const char *x, mg_dtype dt) {
  const char *b = cast(E, B, x, dt, MG_BOOL);
  return op2(E, B, "Reshape", b, ints_init(E, B, 0, NULL));
}

static void set_outputs(ex *E, Onnx__GraphProto *gp, gb *B, const mg_graph *g, char **outs, int first_extra,
                        const char *cond_name) {
  int n = g->noutputs + first_extra;
  gp->n_output = (size_t)n;
  gp->output = ar(E, (size_t)(n ? n : 1) * sizeof *gp->output);
  if (!gp->output) return;
  if (first_extra) {
    mg_gvalue bv = {.dtype = MG_BOOL, .ndim = 0};
    gp->output[0] = value_info(E, cond_name, &bv);
  }
  for (int k = 0; k < g->noutputs; k++) {
    const char *id = op1(E, B, "Identity", outs[k]);
    gp->output[first_extra + k] = value_info(E, id, &g->values[g->outputs[k]]);
  }
  gp->n_node = B->n;
  gp->node = B->nodes;
  gp->n_initializer = B->ni;
  gp->initializer = B->inits;
}

static mg_status emit_cond(ex *E, gb *B, const mg_gnode *n) {
  const char *pred = bool_scalar(E, B, B->names[n->in[0]], (mg_dtype)val(B, n->in[0])->dtype);
  Onnx__GraphProto *br[2];
  for (int s = 0; s < 2; s++) {
    gb sb = {0};
    sb.g = n->sub[s];
    char **outs = inline_graph(E, &sb, n->sub[s], B->names, NULL);
    if (!outs) return MG_EARG;
    br[s] = finish_graph(E, &sb, s ? "else" : "then");
    if (!br[s]) return MG_ENOMEM;
    set_outputs(E, br[s], &sb, n->sub[s], outs, 0, NULL);
  }
  Onnx__NodeProto *nd = node(E, B, "If", 1, &pred, NULL);
  if (!nd) return MG_ENOMEM;
  nd->n_output = (size_t)n->nout;
  nd->output = ar(E, (size_t)(n->nout ? n->nout : 1) * sizeof(char *));
  if (!nd->output) return MG_ENOMEM;
  for (int k = 0; k < n->nout; k++) nd->output[k] = B->names[n->out0 + k] = fresh(E);
  attr_g(E, nd, "then_branch", br[0]);
  attr_g(E, nd, "else_branch", br[1]);
  return MG_OK;
}

static mg_status emit_while(ex *E, gb *B, const mg_gnode *n) {
  if (n->nout != n->nvars) {
    unsupported(E, "while_loop (with its gradient's saved values)");
    return MG_OK;
  }
  const mg_graph *cg = n->sub[0], *bg = n->sub[1];
  char **init = ar(E, (size_t)(n->nvars ? n->nvars : 1) * sizeof *init);
  if (!init) return MG_ENOMEM;
  for (int k = 0; k < n->nvars; k++) init[k] = B->names[n->in[k]];
  char **c0 = inline_graph(E, B, cg, B->names, init);
  if (!c0) return MG_EARG;
  const char *cond0 = bool_scalar(E, B, c0[0], (mg_dtype)cg->values[cg->outputs[0]].dtype);
  /* the body: (iteration, condition, variables...) -> (condition, variables...) */
  gb sb = {0};
  sb.g = bg;
  char **vars = ar(E, (size_t)(n->nvars ? n->nvars : 1) * sizeof *vars);
  if (!vars) return MG_ENOMEM;
  for (int k = 0; k < n->nvars; k++) vars[k] = fresh(E);
  char **outs = inline_graph(E, &sb, bg, B->names, vars);
  if (!outs) return MG_EARG;
  char **c1 = inline_graph(E, &sb, cg, B->names, outs);
  if (!c1) return MG_EARG;
  const char *cond1 = bool_scalar(E, &sb, c1[0], (mg_dtype)cg->values[cg->outputs[0]].dtype);
  Onnx__GraphProto *body = finish_graph(E, &sb, "body");
  if (!body) return MG_ENOMEM;
  const char *cond_out = op1(E, &sb, "Identity", cond1);
  set_outputs(E, body, &sb, bg, outs, 1, cond_out);
  body->n_input = (size_t)n->nvars + 2;
  body->input = ar(E, body->n_input * sizeof *body->input);
  if (!body->input) return MG_ENOMEM;
  mg_gvalue iv = {.dtype = MG_INT64, .ndim = 0}, bv = {.dtype = MG_BOOL, .ndim = 0};
  body->input[0] = value_info(E, fresh(E), &iv);
  body->input[1] = value_info(E, fresh(E), &bv);
  for (int k = 0; k < n->nvars; k++) body->input[2 + k] = value_info(E, vars[k], &bg->values[bg->inputs[k]]);
  const char **ins = ar(E, (size_t)(n->nvars + 2) * sizeof *ins);
  if (!ins) return MG_ENOMEM;
  ins[0] = n->max_iter >= 0 ? int_scalar(E, B, n->max_iter) : "";
  ins[1] = cond0;
  for (int k = 0; k < n->nvars; k++) ins[2 + k] = init[k];
  Onnx__NodeProto *nd = node(E, B, "Loop", n->nvars + 2, ins, NULL);
  if (!nd) return MG_ENOMEM;
  nd->n_output = (size_t)n->nvars;
  nd->output = ar(E, (size_t)(n->nvars ? n->nvars : 1) * sizeof(char *));
  if (!nd->output) return MG_ENOMEM;
  for (int k = 0; k < n->nvars; k++) nd->output[k] = B->names[n->out0 + k] = fresh(E);
  attr_g(E, nd, "body", body);
  return MG_OK;
}

/* Emits the nodes of g (B->names already holds its inputs and captures). */
static mg_status emit_graph(ex *E, gb *B, const mg_graph *g, char **outer) {
  (void)outer;
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    mg_status st = MG_OK;
    switch (n->kind) {
    case MG_N_DEAD: case MG_N_INPUT: break;
    case MG_N_CONST: case MG_N_READ: {
      mg_tensor *t = n->tensor;
      mg_tensor *v = NULL;
      if (n->kind == MG_N_READ) {
        if (mg_variable_read(t, &v)) return MG_EARG;
        t = v;
      }
      B->names[n->out0] = (char *)init_tensor(E, B, t);
      mg_tensor_release(v);
      break;
    }
    case MG_N_OP: {
      const char *r = emit_op(E, B, n);
      if (!r) {
        unsupported(E, mg_op_info(n->op)->name);
        r = "";
      }
      B->names[n->out0] = (char *)r;
      break;
    }
    case MG_N_FUSED: {
      const mg_fused *p = n->ud;
      const char *reg[MG_FUSED_MAX_INSTR];
      for (int t = 0; t < p->ninstr; t++) {
        const mg_fused_instr *in = &p->code[t];
        const char *x = in->a >= 0 ? reg[in->a] : cast(E, B, B->names[n->in[-1 - in->a]],
                                                       (mg_dtype)val(B, n->in[-1 - in->a])->dtype, p->dtype);
        const char *nm = unary_name(in->op), *y = NULL;
        if (in->op == MG_OP_SQUARE) {
          reg[t] = op2(E, B, "Mul", x, x);
          continue;
        }
        if (!nm) {
          nm = binary_name(in->op);
          y = in->b >= 0 ? reg[in->b] : cast(E, B, B->names[n->in[-1 - in->b]],
                                             (mg_dtype)val(B, n->in[-1 - in->b])->dtype, p->dtype);
        }
        if (!nm) {
          unsupported(E, mg_op_info(in->op)->name);
          reg[t] = "";
          continue;
        }
        reg[t] = y ? op2(E, B, nm, x, y) : op1(E, B, nm, x);
      }
      B->names[n->out0] = (char *)cast(E, B, p->ninstr ? reg[p->ninstr - 1] : "", p->dtype,
                                       (mg_dtype)val(B, n->out0)->dtype);
      break;
    }
    case MG_N_COND: st = emit_cond(E, B, n); break;
    case MG_N_WHILE: st = emit_while(E, B, n); break;
    case MG_N_ASSIGN: unsupported(E, "assign (a Variable written)"); break;
    case MG_N_CALL: unsupported(E, n->label ? n->label : "a Lua function call"); break;
    }
    if (st) return st;
    if (E->oom) return mg_seterror(MG_ENOMEM, "onnx export: out of memory");
  }
  return MG_OK;
}

/* ---- the model --------------------------------------------------------------------- */

mg_status mg_onnx_export(mg_ctx *ctx, const mg_graph *g, const char *path, int opset) {
  if (!g || !g->finished) return mg_seterror(MG_EARG, "onnx export: the graph is not finished");
  if (opset < 13 || opset > 21) return mg_seterror(MG_EARG, "onnx export: opset must be 13..21, got %d", opset);
  ex E = {.ctx = ctx, .base = ctx ? mg_ctx_index_base(ctx) : 0, .opset = opset};
  gb B = {0};
  B.g = g;
  mg_status st = MG_OK;
  B.names = ar(&E, (size_t)(g->nvalues ? g->nvalues : 1) * sizeof *B.names);
  Onnx__GraphProto *gp = NULL;
  if (B.names) {
    for (int i = 0; i < g->ninputs; i++) {
      B.names[g->inputs[i]] = sdup(&E, "input_%d", i + 1);
      const mg_gvalue *v = &g->values[g->inputs[i]];
      for (int d = 0; d < v->ndim; d++)
        if (mg_is_probe(v->shape[d]) && !E.probe_in[MG_PROBE_BASE - v->shape[d]])
          E.probe_in[MG_PROBE_BASE - v->shape[d]] = B.names[g->inputs[i]], E.probe_axis[MG_PROBE_BASE - v->shape[d]] = d;
    }
    st = emit_graph(&E, &B, g, NULL);
  }
  if (!st && E.bad[0])
    st = mg_seterror(MG_EARG, "onnx export: no ONNX form for: %s", E.bad);
  if (!st && !E.oom) {
    gp = finish_graph(&E, &B, g->name ? g->name : "moongrad");
    if (gp) {
      gp->n_input = (size_t)g->ninputs;
      gp->input = ar(&E, (size_t)(g->ninputs ? g->ninputs : 1) * sizeof *gp->input);
      for (int i = 0; gp->input && i < g->ninputs; i++)
        gp->input[i] = value_info(&E, B.names[g->inputs[i]], &g->values[g->inputs[i]]);
      gp->n_output = (size_t)g->noutputs;
      gp->output = ar(&E, (size_t)(g->noutputs ? g->noutputs : 1) * sizeof *gp->output);
      for (int k = 0; gp->output && k < g->noutputs; k++) {
        char *on = sdup(&E, "output_%d", k + 1);
        node(&E, &B, "Identity", 1, (const char *[]){B.names[g->outputs[k]]}, on);
        gp->output[k] = value_info(&E, on, &g->values[g->outputs[k]]);
      }
      gp->n_node = B.n;
      gp->node = B.nodes;
      gp->n_initializer = B.ni;
      gp->initializer = B.inits;
    }
  }
  if (!st && (E.oom || !gp)) st = mg_seterror(MG_ENOMEM, "onnx export: out of memory");
  if (!st) {
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__OperatorSetIdProto os = ONNX__OPERATOR_SET_ID_PROTO__INIT, *osp = &os;
    os.domain = "";
    os.has_version = 1;
    os.version = opset;
    m.has_ir_version = 1;
    m.ir_version = opset >= 21 ? 10 : opset >= 19 ? 9 : 8;
    m.producer_name = "moongrad";
    m.producer_version = MG_VERSION;
    m.graph = gp;
    m.n_opset_import = 1;
    m.opset_import = &osp;
    size_t len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
      st = mg_seterror(MG_ENOMEM, "onnx export: out of memory (%zu bytes)", len);
    } else {
      onnx__model_proto__pack(&m, buf);
      FILE *f = fopen(path, "wb");
      if (!f) {
        st = mg_seterror(MG_EIO, "onnx export: cannot open %s for writing", path);
      } else {
        int bad = fwrite(buf, 1, len, f) != len;
        bad |= fclose(f) != 0;
        if (bad) st = mg_seterror(MG_EIO, "onnx export: cannot write %s", path);
      }
      free(buf);
    }
  }
  for (size_t i = 0; i < E.nmem; i++) free(E.mem[i]);
  free(E.mem);
  return st;
}
