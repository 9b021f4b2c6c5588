/*
 * onnx_import.c — reads an ONNX model and traces it into a graph of
 * moongrad ops: mg_onnx_load.
 *
 * The model is unpacked by protobuf-c (core/onnx_subset.proto) and then
 * translated by tracing, exactly as a staged Lua function is: the graph's
 * inputs become placeholders (unknown sizes as -1, so they trace as probe
 * sizes), initializers become tensors, and every ONNX node is applied as
 * moongrad ops through mg_apply. Nothing here runs a kernel of its own, so
 * a loaded model runs in the one executor, optimised like any graph.
 * Ops whose inputs are all concrete (the Shape -> Gather -> Concat chains
 * exporters emit to compute reshape targets) simply run while tracing and
 * enter the graph as constants; an ONNX input that must be a constant here
 * (a Reshape target, Slice bounds, axes) and is not is a clear error.
 *
 * ONNX counts axes and indices from 0 and lays conv/pool data out as NCHW;
 * moongrad counts from the context's index base and its conv/pool ops are
 * NHWC, so axes get the base added, index tensors are shifted, and each
 * Conv/Pool is wrapped in permutes. Before tracing, every op type is
 * checked, so a model with unsupported operators fails once listing all.
 * If traces its branches as subgraphs for mg_trace_cond (or inlines the
 * taken one when the condition is known while loading); Loop becomes a
 * while loop over (iteration, condition, variables...); LSTM is unrolled
 * over its known sequence length. Everything read from the file is
 * checked before it is used: tensor data against its shape before any
 * allocation, axes and indices clamped before arithmetic (tests/fuzz/
 * onnx_fuzz.c, `make fuzz-onnx`).
 */
#include "graph.h"
#include "nn.h"
#include "onnx_subset.pb-c.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IM_MAX_FILE ((size_t)1 << 31)

typedef struct env_ent {
  const char *name;
  mg_tensor *t;
} env_ent;

typedef struct im {
  mg_ctx *ctx;
  int base;
  int64_t opset;
  env_ent *env;
  size_t n, cap;
  const char *op;          /* the node being translated, for errors */
} im;

static mg_status bind(im *I, const char *name, mg_tensor *t) {
  if (!t) return MG_OK;
  if (I->n == I->cap) {
    size_t c = I->cap ? 2 * I->cap : 64;
    env_ent *e = realloc(I->env, c * sizeof *e);
    if (!e) {
      mg_tensor_release(t);
      return mg_seterror(MG_ENOMEM, "onnx load: out of memory");
    }
    I->env = e;
    I->cap = c;
  }
  I->env[I->n].name = name;
  I->env[I->n++].t = t;
  return MG_OK;
}

static mg_tensor *lookup(im *I, const char *name) {
  for (size_t i = I->n; i-- > 0;)
    if (!strcmp(I->env[i].name, name)) return I->env[i].t;
  return NULL;
}

/* A new tensor owned by the environment (released at the end). */
static mg_status keep(im *I, mg_tensor *t, mg_tensor **out) {
  *out = t;
  return bind(I, "", t);
}

static mg_status ap(im *I, mg_op op, int nin, mg_tensor *const *ins, const mg_attrs *a, mg_tensor **out) {
  mg_tensor *t = NULL;
  mg_status st = mg_apply(I->ctx, op, ins, nin, a, &t);
  if (st) {
    char msg[512];  /* a copy: the message is formatted into the buffer it is read from */
    snprintf(msg, sizeof msg, "%s", mg_last_error());
    return mg_seterror(st, "onnx load: %s: %s", I->op, msg);
  }
  return keep(I, t, out);
}

static void set_i(mg_attrs *a, mg_op op, const char *name, int64_t v) {
  int k = mg_op_attr_index(op, name);
  if (k < 0) return;
  a->set |= 1u << k;
  a->v[k].n = 1;
  a->v[k].i[0] = v;
}
static void set_f(mg_attrs *a, mg_op op, const char *name, double v) {
  int k = mg_op_attr_index(op, name);
  if (k < 0) return;
  a->set |= 1u << k;
  a->v[k].n = 1;
  a->v[k].f = v;
}
static void set_l(mg_attrs *a, mg_op op, const char *name, int n, const int64_t *v) {
  int k = mg_op_attr_index(op, name);
  if (k < 0) return;
  a->set |= 1u << k;
  a->v[k].n = n;
  for (int i = 0; i < n && i < MG_MAX_LIST; i++) a->v[k].i[i] = v[i];
}

static mg_status ap1(im *I, mg_op op, mg_tensor *x, const mg_attrs *a, mg_tensor **out) { return ap(I, op, 1, &x, a, out); }
static mg_status ap2(im *I, mg_op op, mg_tensor *x, mg_tensor *y, mg_tensor **out) {
  mg_tensor *in[2] = {x, y};
  return ap(I, op, 2, in, NULL, out);
}

static int symbolic(const mg_tensor *t) { return t->graph != NULL; }

static mg_dtype mg_of_onnx(int32_t t, int *ok) {
  *ok = 1;
  switch (t) {
  case 1: return MG_FLOAT32;
  case 2: return MG_UINT8;
  case 3: return MG_INT8;
  case 5: return MG_INT16;
  case 6: return MG_INT32;
  case 7: return MG_INT64;
  case 9: return MG_BOOL;
  case 10: return MG_FLOAT16;
  case 11: return MG_FLOAT64;
  case 16: return MG_BFLOAT16;
  default: *ok = 0; return MG_FLOAT32;
  }
}

static mg_status tensor_of(im *I, const Onnx__TensorProto *tp, mg_tensor **out) {
  int ok;
  const char *nm = tp->name ? tp->name : "(unnamed)";
  mg_dtype dt = mg_of_onnx(tp->data_type, &ok);
  if (!ok) return mg_seterror(MG_EARG, "onnx load: tensor %s has ONNX data type %d, which moongrad does not read", nm,
                              (int)tp->data_type);
  if (tp->n_dims > MG_MAX_DIMS) return mg_seterror(MG_ESHAPE, "onnx load: tensor %s has %zu dimensions", nm, tp->n_dims);
  if (tp->n_external_data || tp->data_location == 1)
    return mg_seterror(MG_EARG, "onnx load: tensor %s keeps its data in an external file, which moongrad does not read", nm);
  int64_t shape[MG_MAX_DIMS], numel = 1;
  for (size_t d = 0; d < tp->n_dims; d++) {
    if (tp->dims[d] < 0 || (tp->dims[d] && numel > INT64_MAX / 16 / tp->dims[d]))
      return mg_seterror(MG_ESHAPE, "onnx load: tensor %s has a bad size %lld", nm, (long long)tp->dims[d]);
    shape[d] = tp->dims[d];
    numel *= tp->dims[d];
  }
  /* the data must be there before anything is allocated for it (a hostile size stops here) */
  size_t nb = (size_t)numel * mg_dtype_size(dt);
  size_t have = tp->has_raw_data ? tp->raw_data.len
              : tp->n_float_data ? tp->n_float_data : tp->n_int32_data ? tp->n_int32_data
              : tp->n_int64_data ? tp->n_int64_data : tp->n_double_data;
  if (tp->has_raw_data ? have != nb : (size_t)numel != have)
    return mg_seterror(MG_EARG, "onnx load: tensor %s: its data does not match its shape and type", nm);
  mg_tensor *t = NULL;
  mg_status st = mg_tensor_empty(dt, (int)tp->n_dims, shape, &t);
  if (st) return st;
  char *dst = mg_tensor_data(t);
  int bad = 0;
  if (tp->has_raw_data) {
    if (nb) memcpy(dst, tp->raw_data.data, nb);
  } else {
    for (int64_t i = 0; i < numel; i++) {
      switch (dt) {
      case MG_FLOAT32: bad |= !tp->n_float_data; if (!bad) ((float *)dst)[i] = tp->float_data[i]; break;
      case MG_FLOAT64: bad |= !tp->n_double_data; if (!bad) ((double *)dst)[i] = tp->double_data[i]; break;
      case MG_INT64: bad |= !tp->n_int64_data; if (!bad) ((int64_t *)dst)[i] = tp->int64_data[i]; break;
      case MG_INT32: bad |= !tp->n_int32_data; if (!bad) ((int32_t *)dst)[i] = tp->int32_data[i]; break;
      case MG_UINT8: case MG_BOOL: bad |= !tp->n_int32_data; if (!bad) ((uint8_t *)dst)[i] = (uint8_t)tp->int32_data[i]; break;
      case MG_INT8: bad |= !tp->n_int32_data; if (!bad) ((int8_t *)dst)[i] = (int8_t)tp->int32_data[i]; break;
      case MG_INT16: bad |= !tp->n_int32_data; if (!bad) ((int16_t *)dst)[i] = (int16_t)tp->int32_data[i]; break;
      default: bad |= !tp->n_int32_data; if (!bad) ((uint16_t *)dst)[i] = (uint16_t)tp->int32_data[i]; break;
      }
      if (bad) break;
    }
  }
  if (bad) {
    mg_tensor_release(t);
    return mg_seterror(MG_EARG, "onnx load: tensor %s: its data does not match its shape and type", nm);
  }
  return keep(I, t, out);
}

/* ---- node helpers ------------------------------------------------------------------ */

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
  return NULL;
}
static int64_t attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = find_attr(n, name);
  return a ? a->i : dflt;
}
static double attr_float(const Onnx__NodeProto *n, const char *name, double dflt) {
  const Onnx__AttributeProto *a = find_attr(n, name);
  return a ? a->f : dflt;
}
static int attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int cap) {
  const Onnx__AttributeProto *a = find_attr(n, name);
  if (!a) return -1;
  int k = (int)(a->n_ints < (size_t)cap ? a->n_ints : (size_t)cap);
  for (int i = 0; i < k; i++) out[i] = a->ints[i];
  return k;
}
static const char *attr_str(const Onnx__NodeProto *n, const char *name, const char *dflt) {
  const Onnx__AttributeProto *a = find_attr(n, name);
  static __thread char buf[64];
  if (!a || !a->has_s) return dflt;
  size_t l = a->s.len < sizeof buf - 1 ? a->s.len : sizeof buf - 1;
  memcpy(buf, a->s.data, l);
  buf[l] = 0;
  return buf;
}

/* Input k of the node (NULL when absent or empty). */
static mg_status input(im *I, const Onnx__NodeProto *n, size_t k, int need, mg_tensor **out) {
  *out = NULL;
  if (k >= n->n_input || !n->input[k][0]) {
    if (need) return mg_seterror(MG_EARG, "onnx load: %s needs input %zu", I->op, k + 1);
    return MG_OK;
  }
  *out = lookup(I, n->input[k]);
  if (!*out) return mg_seterror(MG_EARG, "onnx load: %s reads '%s', which no earlier node or input defines", I->op,
                                n->input[k]);
  return MG_OK;
}

/* The values of a concrete integer tensor input (at most cap). */
static mg_status ints_of(im *I, mg_tensor *t, const char *what, int64_t *out, int cap, int *n) {
  if (symbolic(t)) return mg_seterror(MG_EARG, "onnx load: %s: %s must be a constant here (it is computed from the "
                                      "model's inputs)", I->op, what);
  int64_t m = mg_tensor_numel(t);
  if (m > cap) return mg_seterror(MG_EARG, "onnx load: %s: %s has %lld values (at most %d)", I->op, what, (long long)m, cap);
  for (int64_t i = 0; i < m; i++) out[i] = mg_tensor_get_i64(t, i);
  *n = (int)m;
  return MG_OK;
}

/* Axes and indices from the file, kept far from overflow (the ops reject what is out of range). */
static int64_t clampi(int64_t v) { return v > ((int64_t)1 << 40) ? (int64_t)1 << 40 : v < -((int64_t)1 << 40) ? -((int64_t)1 << 40) : v; }

static int64_t ax(const im *I, int64_t a, int ndim) {
  a = clampi(a);
  return (a < 0 ? a + ndim : a) + I->base;
}

static mg_status permute(im *I, mg_tensor *x, int n, const int64_t *perm, mg_tensor **out) {
  mg_attrs a = {0};
  int64_t p[MG_MAX_DIMS];
  for (int i = 0; i < n; i++) p[i] = clampi(perm[i]) + I->base;
  set_l(&a, MG_OP_PERMUTE, "axes", n, p);
  return ap1(I, MG_OP_PERMUTE, x, &a, out);
}

static mg_status reshape(im *I, mg_tensor *x, int n, const int64_t *shape, mg_tensor **out) {
  mg_attrs a = {0};
  set_l(&a, MG_OP_RESHAPE, "shape", n, shape);
  return ap1(I, MG_OP_RESHAPE, x, &a, out);
}

static mg_status scalar_like(im *I, double v, mg_dtype dt, mg_tensor **out) {
  mg_tensor *s = NULL, *c = NULL;
  mg_status st = mg_scalar_f64(v, 0, &s);
  if (st) return st;
  if ((st = keep(I, s, &s))) return st;
  mg_attrs a = {0};
  set_i(&a, MG_OP_CAST, "dtype", dt);
  if ((st = ap1(I, MG_OP_CAST, s, &a, &c))) return st;
  *out = c;
  return MG_OK;
}

/* Reduction op over ONNX axes (0-based; none = all) with keepdims. */
static mg_status reduce(im *I, mg_op op, mg_tensor *x, int k, const int64_t *axes, int keep_, mg_tensor **out) {
  mg_attrs a = {0};
  int64_t v[MG_MAX_DIMS];
  for (int i = 0; i < k; i++) v[i] = ax(I, axes[i], x->ndim);
  if (k > 0) set_l(&a, op, "axis", k, v);
  set_i(&a, op, "keepdims", keep_);
  return ap1(I, op, x, &a, out);
}

/* NCHW conv/pool through moongrad's NHWC ops: kind 0 conv, 1 max pool, 2 avg pool. */
static mg_status conv_like(im *I, const Onnx__NodeProto *n, int kind, mg_tensor *x, mg_tensor *w, mg_tensor *b,
                           mg_tensor **out) {
  int nsp = x->ndim - 2;
  if (nsp < 1 || nsp > 3) return mg_seterror(MG_ESHAPE, "onnx load: %s: %d-d input (1 to 3 spatial axes)", I->op, x->ndim);
  static const mg_op convs[3] = {MG_OP_CONV1D, MG_OP_CONV2D, MG_OP_CONV3D};
  static const mg_op maxp[3] = {MG_OP_MAX_POOL1D, MG_OP_MAX_POOL2D, MG_OP_MAX_POOL3D};
  static const mg_op avgp[3] = {MG_OP_AVG_POOL1D, MG_OP_AVG_POOL2D, MG_OP_AVG_POOL3D};
  mg_op op = kind == 0 ? convs[nsp - 1] : kind == 1 ? maxp[nsp - 1] : avgp[nsp - 1];
  int64_t px[5], pw[5], back[5];
  px[0] = 0, px[nsp + 1] = 1;
  back[0] = 0, back[1] = nsp + 1;
  for (int i = 0; i < nsp; i++) px[i + 1] = i + 2, back[i + 2] = i + 1;
  for (int i = 0; i < nsp; i++) pw[i] = i + 2;
  pw[nsp] = 1, pw[nsp + 1] = 0;
  mg_tensor *xt, *wt = NULL, *y;
  mg_status st = permute(I, x, nsp + 2, px, &xt);
  if (!st && w) st = permute(I, w, nsp + 2, pw, &wt);
  if (st) return st;
  mg_attrs a = {0};
  int64_t v[6], pads[6];
  int k;
  if ((k = attr_ints(n, "strides", v, 3)) > 0) set_l(&a, op, "strides", k, v);
  else if (kind) { for (int i = 0; i < nsp; i++) v[i] = 1; set_l(&a, op, "strides", nsp, v); }
  if ((k = attr_ints(n, "dilations", v, 3)) > 0) set_l(&a, op, "dilation", k, v);
  if (kind && (k = attr_ints(n, "kernel_shape", v, 3)) > 0) set_l(&a, op, "ksize", k, v);
  if (kind == 0) set_i(&a, op, "groups", attr_int(n, "group", 1));
  if (kind == 2) set_i(&a, op, "count_include_pad", attr_int(n, "count_include_pad", 0));
  if (kind && attr_int(n, "ceil_mode", 0)) return mg_seterror(MG_EARG, "onnx load: %s: ceil_mode=1 is not supported", I->op);
  const char *autopad = attr_str(n, "auto_pad", "NOTSET");
  if (!strcmp(autopad, "SAME_UPPER")) {
    set_i(&a, op, "padding", MG_PAD_SAME);
  } else if (!strcmp(autopad, "NOTSET") || !strcmp(autopad, "VALID")) {
    int np = attr_ints(n, "pads", pads, 6), any = 0;
    for (int i = 0; i < np; i++) any |= pads[i] != 0;
    if (any && np == 2 * nsp) {
      for (int i = 0; i < nsp; i++) v[2 * i] = pads[i], v[2 * i + 1] = pads[nsp + i];
      set_i(&a, op, "padding", MG_PAD_EXPLICIT);
      set_l(&a, op, "explicit_padding", 2 * nsp, v);
    }
  } else {
    return mg_seterror(MG_EARG, "onnx load: %s: auto_pad %s is not supported", I->op, autopad);
  }
  if (kind == 0) {
    mg_tensor *in[2] = {xt, wt};
    st = ap(I, op, 2, in, &a, &y);
  } else {
    st = ap1(I, op, xt, &a, &y);
  }
  if (!st && b) st = ap2(I, MG_OP_ADD, y, b, &y);  /* channels last: the bias broadcasts */
  if (st) return st;
  return permute(I, y, nsp + 2, back, out);
}

/* ---- the operators ---------------------------------------------------------------- */

typedef struct { const char *name; mg_op op; } pair;
static const pair unary[] = {
  {"Neg", MG_OP_NEG}, {"Abs", MG_OP_ABS}, {"Exp", MG_OP_EXP}, {"Log", MG_OP_LOG}, {"Sqrt", MG_OP_SQRT},
  {"Reciprocal", MG_OP_RECIPROCAL}, {"Relu", MG_OP_RELU}, {"Sigmoid", MG_OP_SIGMOID}, {"Tanh", MG_OP_TANH},
  {"Erf", MG_OP_ERF}, {"Softplus", MG_OP_SOFTPLUS}, {"Sin", MG_OP_SIN}, {"Cos", MG_OP_COS}, {"Tan", MG_OP_TAN},
  {"Floor", MG_OP_FLOOR}, {"Ceil", MG_OP_CEIL}, {"Round", MG_OP_ROUND}, {"Sign", MG_OP_SIGN}, {"Not", MG_OP_LOGICAL_NOT},
  {"Asin", MG_OP_ASIN}, {"Acos", MG_OP_ACOS}, {"Atan", MG_OP_ATAN}, {"Sinh", MG_OP_SINH}, {"Cosh", MG_OP_COSH},
  {"IsNaN", MG_OP_ISNAN}, {"HardSwish", MG_OP_HARD_SWISH}, {NULL, MG_OP_COUNT}};
static const pair binary[] = {
  {"Add", MG_OP_ADD}, {"Sub", MG_OP_SUB}, {"Mul", MG_OP_MUL}, {"Div", MG_OP_DIV}, {"Pow", MG_OP_POW},
  {"Max", MG_OP_MAXIMUM}, {"Min", MG_OP_MINIMUM}, {"MatMul", MG_OP_MATMUL}, {"Equal", MG_OP_EQUAL},
  {"Less", MG_OP_LESS}, {"Greater", MG_OP_GREATER}, {"LessOrEqual", MG_OP_LESS_EQUAL},
  {"GreaterOrEqual", MG_OP_GREATER_EQUAL}, {"And", MG_OP_LOGICAL_AND}, {"Or", MG_OP_LOGICAL_OR},
  {"Xor", MG_OP_LOGICAL_XOR}, {NULL, MG_OP_COUNT}};
static const char *const others[] = {
  "Identity", "Dropout", "Where", "Cast", "Gemm", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
  "GlobalMaxPool", "BatchNormalization", "LayerNormalization", "Softmax", "LogSoftmax", "Gelu", "Elu", "Celu", "LeakyRelu", "IsInf", "OneHot",
  "HardSigmoid", "Clip", "Reshape", "Flatten", "Transpose", "Concat", "Gather", "GatherElements", "ScatterElements", "Slice", "Squeeze",
  "Unsqueeze", "Expand", "Shape", "Constant", "ConstantOfShape", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
  "ReduceProd", "ReduceLogSumExp", "ArgMax", "ArgMin", "Range", "Split", "Mod", "CumSum", "Tile", "Pad", "If", "Loop", "LSTM", NULL};

static mg_op find(const pair *t, const char *name) {
  for (; t->name; t++)
    if (!strcmp(t->name, name)) return t->op;
  return MG_OP_COUNT;
}
static int known(const char *name) {
  if (find(unary, name) != MG_OP_COUNT || find(binary, name) != MG_OP_COUNT) return 1;
  for (const char *const *p = others; *p; p++)
    if (!strcmp(*p, name)) return 1;
  return 0;
}

static mg_status out1(im *I, const Onnx__NodeProto *n, mg_tensor *t) {
  if (n->n_output < 1) return mg_seterror(MG_EARG, "onnx load: %s has no output", I->op);
  return bind(I, n->output[0], (mg_tensor_retain(t), t));
}

/* The axes of a node: the attribute (older opsets) or input k (newer). */
static mg_status node_axes(im *I, const Onnx__NodeProto *n, size_t k, int64_t *axes, int *na) {
  int m = attr_ints(n, "axes", axes, MG_MAX_DIMS);
  if (m >= 0) {
    *na = m;
    return MG_OK;
  }
  mg_tensor *t;
  mg_status st = input(I, n, k, 0, &t);
  *na = 0;
  if (st || !t) return st;
  return ints_of(I, t, "axes", axes, MG_MAX_DIMS, na);
}

static mg_status do_node(im *I, const Onnx__NodeProto *n);

static mg_status bind_inits(im *I, const Onnx__GraphProto *g) {
  mg_status st = MG_OK;
  for (size_t i = 0; i < g->n_initializer && !st; i++) {
    mg_tensor *t;
    if (!g->initializer[i]->name) return mg_seterror(MG_EARG, "onnx load: an initializer has no name");
    if (!(st = tensor_of(I, g->initializer[i], &t))) {
      mg_tensor_retain(t);
      st = bind(I, g->initializer[i]->name, t);
    }
  }
  return st;
}

/* The nodes of g, after its initializers (a subgraph may have its own). */
static mg_status do_nodes(im *I, const Onnx__GraphProto *g) {
  mg_status st = bind_inits(I, g);
  if (st) return st;
  const char *saved = I->op;
  for (size_t i = 0; i < g->n_node && !st; i++) {
    const Onnx__NodeProto *n = g->node[i];
    char what[160];
    snprintf(what, sizeof what, "%s node %s", n->op_type ? n->op_type : "?", n->name && n->name[0] ? n->name : "(unnamed)");
    I->op = what;
    if (!n->op_type) st = mg_seterror(MG_EARG, "onnx load: a node has no op_type");
    else st = do_node(I, n);
  }
  I->op = saved;
  return st;
}

/* Drops the environment's entries made since mark (a subgraph's values). */
static void unwind(im *I, size_t mark) {
  while (I->n > mark) mg_tensor_release(I->env[--I->n].t);
}

static mg_status graph_outputs(im *I, const Onnx__GraphProto *g, size_t from, mg_tensor **outs) {
  for (size_t k = from; k < g->n_output; k++) {
    outs[k - from] = g->output[k]->name ? lookup(I, g->output[k]->name) : NULL;
    if (!outs[k - from]) return mg_seterror(MG_EARG, "onnx load: %s: subgraph output %s is not defined", I->op,
                                            g->output[k]->name ? g->output[k]->name : "(unnamed)");
  }
  return MG_OK;
}

static const Onnx__GraphProto *graph_attr(im *I, const Onnx__NodeProto *n, const char *name, mg_status *st) {
  const Onnx__AttributeProto *a = find_attr(n, name);
  *st = a && a->g ? MG_OK : mg_seterror(MG_EARG, "onnx load: %s has no %s graph", I->op, name);
  return a ? a->g : NULL;
}

/* A one-element tensor as a 0-d one. */
static mg_status as_scalar(im *I, mg_tensor *t, mg_tensor **out) {
  if (t->ndim == 0) { *out = t; return MG_OK; }
  if (mg_tensor_numel(t) != 1) return mg_seterror(MG_ESHAPE, "onnx load: %s: a condition must have one element", I->op);
  return reshape(I, t, 0, NULL, out);
}

static mg_status do_if(im *I, const Onnx__NodeProto *n, mg_tensor *pred) {
  mg_status st;
  const Onnx__GraphProto *br[2] = {graph_attr(I, n, "then_branch", &st), NULL};
  if (st) return st;
  br[1] = graph_attr(I, n, "else_branch", &st);
  if (st) return st;
  size_t nout = n->n_output;
  if (br[0]->n_output != nout || br[1]->n_output != nout)
    return mg_seterror(MG_EARG, "onnx load: %s: the branches give %zu and %zu values for %zu outputs", I->op,
                       br[0]->n_output, br[1]->n_output, nout);
  mg_tensor **outs = calloc(nout ? nout : 1, sizeof *outs);
  if (!outs) return mg_seterror(MG_ENOMEM, "onnx load: out of memory");
  if (!symbolic(pred)) {  /* known while tracing: the branch taken, inline */
    const Onnx__GraphProto *b = br[mg_tensor_get_f64(pred, 0) != 0 ? 0 : 1];
    st = do_nodes(I, b);
    if (!st) st = graph_outputs(I, b, 0, outs);
    for (size_t k = 0; !st && k < nout; k++) {
      mg_tensor_retain(outs[k]);
      st = bind(I, n->output[k], outs[k]);
    }
    free(outs);
    return st;
  }
  mg_graph *g[2] = {NULL, NULL};
  for (int s = 0; s < 2 && !st; s++) {
    size_t mark = I->n;
    if ((st = mg_trace_begin(I->ctx, s ? "else" : "then", &g[s]))) break;
    st = do_nodes(I, br[s]);
    if (!st) st = graph_outputs(I, br[s], 0, outs);
    if (!st) st = mg_trace_end(I->ctx, g[s], (int)nout, outs);
    else mg_trace_abort(I->ctx);
    unwind(I, mark);
  }
  if (!st) st = as_scalar(I, pred, &pred);
  if (!st) st = mg_trace_cond(I->ctx, pred, g[0], g[1], (int)nout, outs);
  for (size_t k = 0; !st && k < nout; k++) st = bind(I, n->output[k], outs[k]);
  mg_graph_release(g[0]);
  mg_graph_release(g[1]);
  free(outs);
  return st;
}

/* Loop(M, cond, v...) as a while loop over (iteration, condition, v...). */
static mg_status do_loop(im *I, const Onnx__NodeProto *n) {
  mg_status st;
  const Onnx__GraphProto *body = graph_attr(I, n, "body", &st);
  if (st) return st;
  int nv = (int)n->n_input - 2;
  if (nv < 0 || body->n_input != (size_t)nv + 2 || body->n_output != (size_t)nv + 1 || n->n_output != (size_t)nv)
    return mg_seterror(MG_EARG, "onnx load: %s: only loops whose body carries its variables (no scan outputs) are "
                       "supported", I->op);
  mg_tensor *maxit, *c0;
  if ((st = input(I, n, 0, 0, &maxit)) || (st = input(I, n, 1, 0, &c0))) return st;
  int nvars = nv + 2;
  mg_tensor **init = calloc((size_t)nvars * 3, sizeof *init);
  if (!init) return mg_seterror(MG_ENOMEM, "onnx load: out of memory");
  mg_tensor **ph = init + nvars, **outs = init + 2 * nvars;
  mg_graph *cg = NULL, *bg = NULL;
  if ((st = mg_scalar_i64(0, 0, &init[0])) || (st = keep(I, init[0], &init[0]))) goto out;
  if (c0) st = as_scalar(I, c0, &init[1]);
  else if (!(st = mg_scalar_i64(1, 0, &init[1])) && !(st = keep(I, init[1], &init[1]))) {
    mg_attrs a = {0};
    set_i(&a, MG_OP_CAST, "dtype", MG_BOOL);
    st = ap1(I, MG_OP_CAST, init[1], &a, &init[1]);
  }
  for (int k = 0; k < nv && !st; k++) st = input(I, n, (size_t)k + 2, 1, &init[2 + k]);
  if (st) goto out;
  for (int part = 0; part < 2 && !st; part++) {  /* 0: the condition, 1: the body */
    size_t mark = I->n;
    mg_graph *g = NULL;
    int ended = 0;  /* mg_trace_end pops the trace even when it fails */
    if ((st = mg_trace_begin(I->ctx, part ? "body" : "cond", &g))) break;
    for (int k = 0; k < nvars && !st; k++) {
      if (!(st = mg_trace_placeholder(I->ctx, (mg_dtype)init[k]->dtype, init[k]->ndim, init[k]->shape, &ph[k])))
        st = keep(I, ph[k], &ph[k]);
    }
    if (!st && part == 0) {
      outs[0] = ph[1];
      if (maxit) {
        mg_tensor *lt;
        if (!(st = ap2(I, MG_OP_LESS, ph[0], maxit, &lt))) st = ap2(I, MG_OP_LOGICAL_AND, ph[1], lt, &outs[0]);
      }
      if (!st) st = mg_trace_end(I->ctx, g, 1, outs), ended = 1;
    } else if (!st) {
      for (int k = 0; k < nvars && !st; k++)
        if (body->input[k]->name) st = bind(I, body->input[k]->name, (mg_tensor_retain(ph[k]), ph[k]));
      if (!st) st = do_nodes(I, body);
      if (!st) st = graph_outputs(I, body, 0, outs + 1);
      mg_tensor *one;
      if (!st && !(st = mg_scalar_i64(1, 0, &one)) && !(st = keep(I, one, &one))) st = ap2(I, MG_OP_ADD, ph[0], one, &outs[0]);
      if (!st) {
        mg_attrs a = {0};
        set_i(&a, MG_OP_CAST, "dtype", MG_BOOL);
        if (!(st = as_scalar(I, outs[1], &outs[1]))) st = ap1(I, MG_OP_CAST, outs[1], &a, &outs[1]);
      }
      if (!st) st = mg_trace_end(I->ctx, g, nvars, outs), ended = 1;
    }
    if (!ended) mg_trace_abort(I->ctx);
    unwind(I, mark);
    if (part) bg = g;
    else cg = g;
    if (st) break;
  }
  if (!st) st = mg_trace_while(I->ctx, cg, bg, nvars, init, -1, outs);
  if (!st) {
    for (int k = 0; k < 2; k++) mg_tensor_release(outs[k]);
    for (int k = 0; k < nv && !st; k++) st = bind(I, n->output[k], outs[2 + k]);
  }
out:
  mg_graph_release(cg);
  mg_graph_release(bg);
  free(init);
  return st;
}

/* Part [lo, hi) of a 1-d tensor. */
static mg_status cols_1d(im *I, mg_tensor *x, int64_t lo, int64_t hi, mg_tensor **out) {
  mg_attrs a = {0};
  int64_t b[1] = {lo}, e[1] = {hi};
  set_l(&a, MG_OP_SLICE, "begin", 1, b);
  set_l(&a, MG_OP_SLICE, "end", 1, e);
  return ap1(I, MG_OP_SLICE, x, &a, out);
}

/* Part [lo, hi) of axis 1 of a 2-d tensor. */
static mg_status cols(im *I, mg_tensor *x, int64_t lo, int64_t hi, mg_tensor **out) {
  mg_attrs a = {0};
  int64_t b[2] = {0, lo}, e[2] = {INT64_MAX, hi};
  set_l(&a, MG_OP_SLICE, "begin", 2, b);
  set_l(&a, MG_OP_SLICE, "end", 2, e);
  return ap1(I, MG_OP_SLICE, x, &a, out);
}

static mg_status pick(im *I, mg_tensor *x, int64_t i, mg_tensor **out) {
  mg_attrs a = {0};
  set_i(&a, MG_OP_SELECT, "axis", I->base);
  set_i(&a, MG_OP_SELECT, "index", i + I->base);
  return ap1(I, MG_OP_SELECT, x, &a, out);
}

static mg_status unsq0(im *I, mg_tensor *x, mg_tensor **out) {
  mg_attrs a = {0};
  set_i(&a, MG_OP_UNSQUEEZE, "axis", I->base);
  return ap1(I, MG_OP_UNSQUEEZE, x, &a, out);
}

/* LSTM (forward, default activations, no peepholes), unrolled over the known sequence length:
 * gates i, o, f, c in ONNX's order; Y (seq, 1, batch, hidden), Y_h and Y_c (1, batch, hidden). */
static mg_status do_lstm(im *I, const Onnx__NodeProto *n, mg_tensor *x) {
  mg_status st;
  mg_tensor *W, *R, *B, *seqlens, *h0, *c0, *P;
  if ((st = input(I, n, 1, 1, &W)) || (st = input(I, n, 2, 1, &R)) || (st = input(I, n, 3, 0, &B)) ||
      (st = input(I, n, 4, 0, &seqlens)) || (st = input(I, n, 5, 0, &h0)) || (st = input(I, n, 6, 0, &c0)) ||
      (st = input(I, n, 7, 0, &P)))
    return st;
  const char *dir = attr_str(n, "direction", "forward");
  if (strcmp(dir, "forward") || P || find_attr(n, "activations") || find_attr(n, "clip") ||
      attr_int(n, "input_forget", 0) || attr_int(n, "layout", 0))
    return mg_seterror(MG_EARG, "onnx load: %s: only forward LSTMs with the default activations, no peepholes, clip, "
                       "input_forget or layout are supported", I->op);
  if (R->ndim != 3 || W->ndim != 3 || attr_int(n, "hidden_size", R->shape[2]) != R->shape[2] || R->shape[2] < 1)
    return mg_seterror(MG_ESHAPE, "onnx load: %s: W and R must be 3-d and hidden_size R's last size", I->op);
  if (seqlens && symbolic(seqlens)) return mg_seterror(MG_EARG, "onnx load: %s: sequence_lens must be a constant", I->op);
  if (x->ndim != 3 || mg_is_probe(x->shape[0]))
    return mg_seterror(MG_ESHAPE, "onnx load: %s: the input must be (seq, batch, features) with a known length", I->op);
  int64_t T = x->shape[0], H = attr_int(n, "hidden_size", R->ndim == 3 ? R->shape[2] : 0), batch = x->shape[1];
  if (seqlens)
    for (int64_t i = 0; i < mg_tensor_numel(seqlens); i++)
      if (mg_tensor_get_i64(seqlens, i) != T)
        return mg_seterror(MG_EARG, "onnx load: %s: sequence_lens shorter than the sequence are not supported", I->op);
  mg_tensor *w, *r, *b = NULL, *h, *c, *g, *t1, *t2;
  if ((st = pick(I, W, 0, &w)) || (st = ap1(I, MG_OP_TRANSPOSE, w, NULL, &w)) || (st = pick(I, R, 0, &r)) ||
      (st = ap1(I, MG_OP_TRANSPOSE, r, NULL, &r)))
    return st;
  if (B && ((st = pick(I, B, 0, &B)) || (st = cols_1d(I, B, 0, 4 * H, &t1)) || (st = cols_1d(I, B, 4 * H, 8 * H, &t2)) ||
            (st = ap2(I, MG_OP_ADD, t1, t2, &b))))
    return st;
  if (h0) st = pick(I, h0, 0, &h);
  else {
    mg_attrs a = {0};
    int64_t shp[2] = {batch, H};
    set_l(&a, MG_OP_FULL, "shape", 2, shp);
    set_i(&a, MG_OP_FULL, "dtype", x->dtype);
    st = ap(I, MG_OP_FULL, 0, NULL, &a, &h);
  }
  if (st) return st;
  if (c0) st = pick(I, c0, 0, &c);
  else c = h;  /* both zeros */
  if (st) return st;
  mg_tensor **ys = calloc((size_t)(T ? T : 1), sizeof *ys);
  if (!ys) return mg_seterror(MG_ENOMEM, "onnx load: out of memory");
  for (int64_t t = 0; t < T && !st; t++) {
    mg_tensor *xt, *gi, *go, *gf, *gc;
    if ((st = pick(I, x, t, &xt)) || (st = ap2(I, MG_OP_MATMUL, xt, w, &g)) || (st = ap2(I, MG_OP_MATMUL, h, r, &t1)) ||
        (st = ap2(I, MG_OP_ADD, g, t1, &g)) || (b && (st = ap2(I, MG_OP_ADD, g, b, &g))))
      break;
    if ((st = cols(I, g, 0, H, &gi)) || (st = cols(I, g, H, 2 * H, &go)) || (st = cols(I, g, 2 * H, 3 * H, &gf)) ||
        (st = cols(I, g, 3 * H, 4 * H, &gc)))
      break;
    if ((st = ap1(I, MG_OP_SIGMOID, gi, NULL, &gi)) || (st = ap1(I, MG_OP_SIGMOID, go, NULL, &go)) ||
        (st = ap1(I, MG_OP_SIGMOID, gf, NULL, &gf)) || (st = ap1(I, MG_OP_TANH, gc, NULL, &gc)))
      break;
    if ((st = ap2(I, MG_OP_MUL, gf, c, &t1)) || (st = ap2(I, MG_OP_MUL, gi, gc, &t2)) || (st = ap2(I, MG_OP_ADD, t1, t2, &c)) ||
        (st = ap1(I, MG_OP_TANH, c, NULL, &t1)) || (st = ap2(I, MG_OP_MUL, go, t1, &h)))
      break;
    if ((st = unsq0(I, h, &ys[t])) || (st = unsq0(I, ys[t], &ys[t]))) break;
  }
  mg_tensor *y = NULL;
  if (!st && n->n_output > 0 && n->output[0][0]) {
    mg_attrs a = {0};
    set_i(&a, MG_OP_CONCAT, "axis", I->base);
    if (!(st = ap(I, MG_OP_CONCAT, (int)T, ys, &a, &y))) st = bind(I, n->output[0], (mg_tensor_retain(y), y));
  }
  free(ys);
  if (!st && n->n_output > 1 && n->output[1][0] && !(st = unsq0(I, h, &t1))) st = bind(I, n->output[1], (mg_tensor_retain(t1), t1));
  if (!st && n->n_output > 2 && n->output[2][0] && !(st = unsq0(I, c, &t1))) st = bind(I, n->output[2], (mg_tensor_retain(t1), t1));
  return st;
}

static mg_status do_node(im *I, const Onnx__NodeProto *n) {
  const char *ty = n->op_type;
  mg_tensor *x = NULL, *y = NULL, *z = NULL, *r = NULL;
  mg_status st;
  mg_op op;
  mg_attrs a = {0};
  int64_t v[MG_MAX_LIST], w[MG_MAX_LIST];
  int k, m;
  if (!strcmp(ty, "Constant")) {
    const Onnx__AttributeProto *at = find_attr(n, "value");
    if (at && at->t) {
      if ((st = tensor_of(I, at->t, &r))) return st;
    } else if ((at = find_attr(n, "value_float"))) {
      if ((st = mg_scalar_f64(at->f, 0, &r)) || (st = keep(I, r, &r)) || (st = scalar_like(I, at->f, MG_FLOAT32, &r))) return st;
    } else if ((at = find_attr(n, "value_int"))) {
      if ((st = mg_scalar_i64(at->i, 0, &r)) || (st = keep(I, r, &r))) return st;
    } else if ((at = find_attr(n, "value_ints"))) {
      int64_t shp[1] = {(int64_t)at->n_ints};
      if ((st = mg_tensor_from_data(MG_INT64, 1, shp, at->ints, &r)) || (st = keep(I, r, &r))) return st;
    } else {
      return mg_seterror(MG_EARG, "onnx load: Constant: only value, value_float, value_int and value_ints are read");
    }
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Loop")) return do_loop(I, n);
  if ((st = input(I, n, 0, 1, &x))) return st;
  if (!strcmp(ty, "If")) return do_if(I, n, x);
  if (!strcmp(ty, "LSTM")) return do_lstm(I, n, x);
  if ((op = find(unary, ty)) != MG_OP_COUNT) {
    if ((st = ap1(I, op, x, NULL, &r))) return st;
    return out1(I, n, r);
  }
  if ((op = find(binary, ty)) != MG_OP_COUNT) {
    if ((st = input(I, n, 1, 1, &y)) || (st = ap2(I, op, x, y, &r))) return st;
    for (size_t i = 2; i < n->n_input && (op == MG_OP_MAXIMUM || op == MG_OP_MINIMUM); i++)
      if ((st = input(I, n, i, 1, &y)) || (st = ap2(I, op, r, y, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Identity") || !strcmp(ty, "Dropout")) return out1(I, n, x);
  if (!strcmp(ty, "Where")) {
    if ((st = input(I, n, 1, 1, &y)) || (st = input(I, n, 2, 1, &z))) return st;
    mg_tensor *in[3] = {x, y, z};
    if ((st = ap(I, MG_OP_WHERE, 3, in, NULL, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Cast")) {
    int ok;
    mg_dtype dt = mg_of_onnx((int32_t)attr_int(n, "to", 1), &ok);
    if (!ok) return mg_seterror(MG_EARG, "onnx load: Cast to ONNX type %lld is not supported", (long long)attr_int(n, "to", 0));
    set_i(&a, MG_OP_CAST, "dtype", dt);
    if ((st = ap1(I, MG_OP_CAST, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Mod")) {
    if ((st = input(I, n, 1, 1, &y)) || (st = ap2(I, attr_int(n, "fmod", 0) ? MG_OP_FMOD : MG_OP_MOD, x, y, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Gemm")) {
    if ((st = input(I, n, 1, 1, &y)) || (st = input(I, n, 2, 0, &z))) return st;
    if (attr_int(n, "transA", 0) && (st = ap1(I, MG_OP_TRANSPOSE, x, NULL, &x))) return st;
    if (attr_int(n, "transB", 0) && (st = ap1(I, MG_OP_TRANSPOSE, y, NULL, &y))) return st;
    if ((st = ap2(I, MG_OP_MATMUL, x, y, &r))) return st;
    double alpha = attr_float(n, "alpha", 1), beta = attr_float(n, "beta", 1);
    mg_tensor *s;
    if (alpha != 1 && ((st = scalar_like(I, alpha, (mg_dtype)r->dtype, &s)) || (st = ap2(I, MG_OP_MUL, r, s, &r)))) return st;
    if (z) {
      if (beta != 1 && ((st = scalar_like(I, beta, (mg_dtype)z->dtype, &s)) || (st = ap2(I, MG_OP_MUL, z, s, &z)))) return st;
      if ((st = ap2(I, MG_OP_ADD, r, z, &r))) return st;
    }
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Conv") || !strcmp(ty, "MaxPool") || !strcmp(ty, "AveragePool")) {
    int kind = ty[0] == 'C' ? 0 : ty[0] == 'M' ? 1 : 2;
    if (kind == 0 && ((st = input(I, n, 1, 1, &y)) || (st = input(I, n, 2, 0, &z)))) return st;
    if ((st = conv_like(I, n, kind, x, y, z, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "GlobalAveragePool") || !strcmp(ty, "GlobalMaxPool")) {
    if (x->ndim < 3) return mg_seterror(MG_ESHAPE, "onnx load: %s: the input must be (N, C, spatial...)", I->op);
    for (k = 2; k < x->ndim; k++) v[k - 2] = k;
    if ((st = reduce(I, ty[6] == 'A' ? MG_OP_MEAN : MG_OP_MAX, x, x->ndim - 2, v, 1, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "BatchNormalization")) {
    mg_tensor *p[4];
    for (int i = 0; i < 4; i++) {
      if ((st = input(I, n, (size_t)i + 1, 1, &p[i]))) return st;
      if (x->ndim > 2) {  /* (C) -> (C, 1, ...) to broadcast over NC... */
        int64_t shp[MG_MAX_DIMS];
        shp[0] = mg_tensor_numel(p[i]);
        for (k = 1; k < x->ndim - 1; k++) shp[k] = 1;
        if ((st = reshape(I, p[i], x->ndim - 1, shp, &p[i]))) return st;
      }
    }
    mg_tensor *in[5] = {x, p[2], p[3], p[1], p[0]};
    set_f(&a, MG_OP_BATCH_NORM, "epsilon", attr_float(n, "epsilon", 1e-5));
    if ((st = ap(I, MG_OP_BATCH_NORM, 5, in, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "LayerNormalization")) {
    mg_tensor *scale, *bias, *mean, *var;
    if ((st = input(I, n, 1, 1, &scale)) || (st = input(I, n, 2, 0, &bias))) return st;
    int64_t axis = attr_int(n, "axis", -1);
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis >= x->ndim) return mg_seterror(MG_EINDEX, "onnx load: %s: axis out of range", I->op);
    for (k = 0; k < x->ndim - axis; k++) v[k] = axis + k;
    if ((st = reduce(I, MG_OP_MEAN, x, k, v, 1, &mean)) || (st = reduce(I, MG_OP_VARIANCE, x, k, v, 1, &var))) return st;
    if (!bias && (st = scalar_like(I, 0, (mg_dtype)x->dtype, &bias))) return st;
    mg_tensor *in[5] = {x, mean, var, bias, scale};
    set_f(&a, MG_OP_BATCH_NORM, "epsilon", attr_float(n, "epsilon", 1e-5));
    if ((st = ap(I, MG_OP_BATCH_NORM, 5, in, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Softmax") || !strcmp(ty, "LogSoftmax")) {
    op = ty[0] == 'S' ? MG_OP_SOFTMAX : MG_OP_LOG_SOFTMAX;
    set_i(&a, op, "axis", ax(I, attr_int(n, "axis", -1), x->ndim));
    if ((st = ap1(I, op, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Gelu")) {
    set_i(&a, MG_OP_GELU, "approximate", !strcmp(attr_str(n, "approximate", "none"), "tanh"));
    if ((st = ap1(I, MG_OP_GELU, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "IsInf")) {
    if (!attr_int(n, "detect_negative", 1) || !attr_int(n, "detect_positive", 1))
      return mg_seterror(MG_EARG, "onnx load: %s: only detecting both infinities is supported", I->op);
    if ((st = ap1(I, MG_OP_ISINF, x, NULL, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "OneHot")) {  /* last axis only; values {off, on} */
    mg_tensor *depth, *vals, *one, *off, *on;
    if ((st = input(I, n, 1, 1, &depth)) || (st = input(I, n, 2, 1, &vals))) return st;
    int64_t axis = attr_int(n, "axis", -1);
    if ((axis != -1 && axis != x->ndim) || symbolic(depth) || symbolic(vals) || mg_tensor_numel(vals) != 2 ||
        mg_tensor_numel(depth) != 1)
      return mg_seterror(MG_EARG, "onnx load: %s: only a constant depth and values on the last axis are supported", I->op);
    if (I->base && ((st = scalar_like(I, I->base, (mg_dtype)x->dtype, &one)) || (st = ap2(I, MG_OP_ADD, x, one, &x)))) return st;
    set_i(&a, MG_OP_ONE_HOT, "depth", clampi(mg_tensor_get_i64(depth, 0)));
    set_i(&a, MG_OP_ONE_HOT, "dtype", vals->dtype);
    set_i(&a, MG_OP_ONE_HOT, "outside", 1);
    if ((st = ap1(I, MG_OP_ONE_HOT, x, &a, &r))) return st;
    double v0 = mg_tensor_get_f64(vals, 0), v1 = mg_tensor_get_f64(vals, 1);
    if (v0 != 0 || v1 != 1) {
      if ((st = scalar_like(I, v1 - v0, (mg_dtype)vals->dtype, &on)) || (st = ap2(I, MG_OP_MUL, r, on, &r)) ||
          (st = scalar_like(I, v0, (mg_dtype)vals->dtype, &off)) || (st = ap2(I, MG_OP_ADD, r, off, &r)))
        return st;
    }
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Elu") || !strcmp(ty, "LeakyRelu") || !strcmp(ty, "Celu")) {
    op = ty[0] == 'E' ? MG_OP_ELU : ty[0] == 'C' ? MG_OP_CELU : MG_OP_LEAKY_RELU;
    set_f(&a, op, "alpha", attr_float(n, "alpha", op == MG_OP_LEAKY_RELU ? 0.01 : 1.0));
    if ((st = ap1(I, op, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "HardSigmoid")) {  /* max(0, min(1, alpha x + beta)) */
    mg_tensor *s;
    if ((st = scalar_like(I, attr_float(n, "alpha", 0.2), (mg_dtype)x->dtype, &s)) || (st = ap2(I, MG_OP_MUL, x, s, &r)) ||
        (st = scalar_like(I, attr_float(n, "beta", 0.5), (mg_dtype)x->dtype, &s)) || (st = ap2(I, MG_OP_ADD, r, s, &r)))
      return st;
    set_f(&a, MG_OP_CLIP, "min", 0);
    set_f(&a, MG_OP_CLIP, "max", 1);
    if ((st = ap1(I, MG_OP_CLIP, r, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Clip")) {
    if ((st = input(I, n, 1, 0, &y)) || (st = input(I, n, 2, 0, &z))) return st;
    if (y && !symbolic(y)) set_f(&a, MG_OP_CLIP, "min", mg_tensor_get_f64(y, 0));
    if (z && !symbolic(z)) set_f(&a, MG_OP_CLIP, "max", mg_tensor_get_f64(z, 0));
    if ((y && symbolic(y)) || (z && symbolic(z))) return mg_seterror(MG_EARG, "onnx load: Clip: min and max must be constants");
    if (!y && !z) return out1(I, n, x);
    if ((st = ap1(I, MG_OP_CLIP, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Reshape")) {
    if ((st = input(I, n, 1, 1, &y)) || (st = ints_of(I, y, "shape", v, MG_MAX_DIMS, &k))) return st;
    int neg = -1;
    int64_t known_out = 1, known_in = 1;
    for (int i = 0; i < k; i++) {
      if (v[i] == 0 && !attr_int(n, "allowzero", 0) && i < x->ndim) v[i] = x->shape[i];
      if (v[i] == -1 && neg < 0) neg = i;
      else if (v[i] < 0 || (!mg_is_probe(v[i]) && __builtin_mul_overflow(known_out, v[i], &known_out)))
        return mg_seterror(MG_ESHAPE, "onnx load: %s: bad target size %lld", I->op, (long long)v[i]);
    }
    if (neg >= 0) {  /* the input's sizes over the known ones; probe sizes cancel when both sides have them */
      int64_t lone = 0;  /* an unknown input size the target does not name: -1 stands for it (times the rest) */
      for (int i = 0; i < x->ndim; i++) {
        int shared = 0;
        for (int j = 0; j < k && mg_is_probe(x->shape[i]); j++) shared |= v[j] == x->shape[i];
        if (!mg_is_probe(x->shape[i])) known_in *= x->shape[i];
        else if (!shared && lone) return mg_seterror(MG_EARG, "onnx load: %s: -1 with two unknown input sizes", I->op);
        else if (!shared) lone = x->shape[i];
      }
      if (lone && known_in != known_out)
        return mg_seterror(MG_EARG, "onnx load: %s: -1 would be an unknown size times %lld / %lld", I->op,
                           (long long)known_in, (long long)known_out);
      v[neg] = lone ? lone : known_out ? known_in / known_out : 0;
    }
    if ((st = reshape(I, x, k, v, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Flatten")) {
    int64_t axis = attr_int(n, "axis", 1), p0 = 1, p1 = 1;
    if (axis < 0) axis += x->ndim;
    for (k = 0; k < x->ndim; k++) {
      int64_t d = x->shape[k];
      if (mg_is_probe(d) && ((k < axis && axis != 1) || k >= axis))
        return mg_seterror(MG_EARG, "onnx load: Flatten over an unknown size");
      if (k < axis) p0 = mg_is_probe(d) ? d : p0 * d;
      else p1 *= d;
    }
    v[0] = p0, v[1] = p1;
    if ((st = reshape(I, x, 2, v, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Transpose")) {
    if ((k = attr_ints(n, "perm", v, MG_MAX_DIMS)) < 0)
      for (k = 0; k < x->ndim; k++) v[k] = x->ndim - 1 - k;
    if ((st = permute(I, x, k, v, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Concat")) {
    mg_tensor **in = calloc(n->n_input ? n->n_input : 1, sizeof *in);
    if (!in) return mg_seterror(MG_ENOMEM, "onnx load: out of memory");
    for (size_t i = 0; i < n->n_input && !st; i++) st = input(I, n, i, 1, &in[i]);
    set_i(&a, MG_OP_CONCAT, "axis", ax(I, attr_int(n, "axis", 0), x->ndim));
    if (!st) st = ap(I, MG_OP_CONCAT, (int)n->n_input, in, &a, &r);
    free(in);
    if (st) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Gather") || !strcmp(ty, "GatherElements")) {
    int64_t axis = attr_int(n, "axis", 0);
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis >= x->ndim) return mg_seterror(MG_EINDEX, "onnx load: %s: axis out of range", I->op);
    if ((st = input(I, n, 1, 1, &y))) return st;
    if (!symbolic(y)) {  /* normalise negative indices now */
      mg_tensor *c = NULL;
      if ((st = mg_tensor_empty(MG_INT64, y->ndim, y->shape, &c)) || (st = keep(I, c, &c))) return st;
      for (int64_t i = 0; i < mg_tensor_numel(y); i++) {
        int64_t j = clampi(mg_tensor_get_i64(y, i));
        ((int64_t *)mg_tensor_data(c))[i] = (j < 0 ? j + x->shape[axis] : j) + I->base;
      }
      y = c;
    } else if (I->base) {
      mg_tensor *one;
      if ((st = scalar_like(I, I->base, (mg_dtype)y->dtype, &one)) || (st = ap2(I, MG_OP_ADD, y, one, &y))) return st;
    }
    op = ty[6] ? MG_OP_GATHER : MG_OP_TAKE;
    set_i(&a, op, "axis", axis + I->base);
    mg_tensor *in[2] = {x, y};
    if ((st = ap(I, op, 2, in, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "ScatterElements")) {  /* reduction add only: scatter_add */
    int64_t axis = attr_int(n, "axis", 0);
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis >= x->ndim) return mg_seterror(MG_EINDEX, "onnx load: %s: axis out of range", I->op);
    if (strcmp(attr_str(n, "reduction", "none"), "add"))
      return mg_seterror(MG_EARG, "onnx load: %s: only reduction=\"add\" is supported", I->op);
    mg_tensor *one;
    if ((st = input(I, n, 1, 1, &y)) || (st = input(I, n, 2, 1, &z))) return st;
    if (I->base && ((st = scalar_like(I, I->base, (mg_dtype)y->dtype, &one)) || (st = ap2(I, MG_OP_ADD, y, one, &y)))) return st;
    set_i(&a, MG_OP_SCATTER_ADD, "axis", axis + I->base);
    mg_tensor *in[3] = {x, y, z};
    if ((st = ap(I, MG_OP_SCATTER_ADD, 3, in, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Slice")) {
    int64_t st_[MG_MAX_DIMS], en[MG_MAX_DIMS], axes[MG_MAX_DIMS], steps[MG_MAX_DIMS];
    int ns, ne, na = -1, nst = -1;
    mg_tensor *t;
    if ((st = input(I, n, 1, 1, &t)) || (st = ints_of(I, t, "starts", st_, MG_MAX_DIMS, &ns))) return st;
    if ((st = input(I, n, 2, 1, &t)) || (st = ints_of(I, t, "ends", en, MG_MAX_DIMS, &ne))) return st;
    if ((st = input(I, n, 3, 0, &t)) || (t && (st = ints_of(I, t, "axes", axes, MG_MAX_DIMS, &na)))) return st;
    if ((st = input(I, n, 4, 0, &t)) || (t && (st = ints_of(I, t, "steps", steps, MG_MAX_DIMS, &nst)))) return st;
    if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
      return mg_seterror(MG_EARG, "onnx load: Slice: starts, ends, axes and steps differ in length");
    for (int d = 0; d < x->ndim; d++) v[d] = 0, w[d] = INT64_MAX;
    int64_t sp[MG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) sp[d] = 1;
    for (int i = 0; i < ns; i++) {
      int64_t d = na >= 0 ? axes[i] : i;
      if (d < 0) d += x->ndim;
      if (d < 0 || d >= x->ndim) return mg_seterror(MG_EINDEX, "onnx load: Slice: axis %lld out of range", (long long)axes[i]);
      int64_t s = nst >= 0 ? steps[i] : 1;
      v[d] = st_[i], w[d] = en[i], sp[d] = s;
      if (s < 0 && en[i] < -x->shape[d]) w[d] = INT64_MIN;
    }
    set_l(&a, MG_OP_SLICE, "begin", x->ndim, v);
    set_l(&a, MG_OP_SLICE, "end", x->ndim, w);
    set_l(&a, MG_OP_SLICE, "step", x->ndim, sp);
    if ((st = ap1(I, MG_OP_SLICE, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Squeeze")) {
    if ((st = node_axes(I, n, 1, v, &k))) return st;
    for (int i = 0; i < k; i++) v[i] = ax(I, v[i], x->ndim);
    if (k) set_l(&a, MG_OP_SQUEEZE, "axis", k, v);
    if ((st = ap1(I, MG_OP_SQUEEZE, x, k ? &a : NULL, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Unsqueeze")) {
    if ((st = node_axes(I, n, 1, v, &k))) return st;
    int rank = x->ndim + k;
    for (int i = 0; i < k; i++) v[i] = clampi(v[i]) < 0 ? clampi(v[i]) + rank : clampi(v[i]);
    for (int i = 1; i < k; i++)  /* ascending, so each lands where ONNX puts it */
      for (int j = i; j > 0 && v[j - 1] > v[j]; j--) { int64_t tmp = v[j]; v[j] = v[j - 1]; v[j - 1] = tmp; }
    r = x;
    for (int i = 0; i < k; i++) {
      mg_attrs b = {0};
      set_i(&b, MG_OP_UNSQUEEZE, "axis", v[i] + I->base);
      if ((st = ap1(I, MG_OP_UNSQUEEZE, r, &b, &r))) return st;
    }
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Expand")) {  /* bidirectional broadcast to the shape */
    if ((st = input(I, n, 1, 1, &y)) || (st = ints_of(I, y, "shape", v, MG_MAX_DIMS, &k))) return st;
    int rank = k > x->ndim ? k : x->ndim;
    for (int i = 0; i < rank; i++) {
      int64_t p = i - (rank - k) >= 0 ? v[i - (rank - k)] : 1, q = i - (rank - x->ndim) >= 0 ? x->shape[i - (rank - x->ndim)] : 1;
      w[i] = p == 1 ? q : p;
    }
    set_l(&a, MG_OP_EXPAND, "shape", rank, w);
    if ((st = ap1(I, MG_OP_EXPAND, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Shape")) {  /* known while tracing (unknown sizes as their probes) */
    int64_t s0 = attr_int(n, "start", 0), e0 = attr_int(n, "end", x->ndim), shp[1];
    if (s0 < 0) s0 += x->ndim;
    if (e0 < 0) e0 += x->ndim;
    if (s0 < 0) s0 = 0;
    if (e0 > x->ndim) e0 = x->ndim;
    shp[0] = e0 > s0 ? e0 - s0 : 0;
    if ((st = mg_tensor_from_data(MG_INT64, 1, shp, x->shape + s0, &r)) || (st = keep(I, r, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "ConstantOfShape")) {
    if ((st = ints_of(I, x, "shape", v, MG_MAX_DIMS, &k))) return st;
    const Onnx__AttributeProto *at = find_attr(n, "value");
    double val = 0;
    mg_dtype dt = MG_FLOAT32;
    if (at && at->t) {
      if ((st = tensor_of(I, at->t, &y))) return st;
      val = mg_tensor_get_f64(y, 0);
      dt = (mg_dtype)y->dtype;
    }
    set_l(&a, MG_OP_FULL, "shape", k, v);
    set_f(&a, MG_OP_FULL, "value", val);
    set_i(&a, MG_OP_FULL, "dtype", dt);
    if ((st = ap(I, MG_OP_FULL, 0, NULL, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Range")) {
    if ((st = input(I, n, 1, 1, &y)) || (st = input(I, n, 2, 1, &z))) return st;
    if (symbolic(x) || symbolic(y) || symbolic(z)) return mg_seterror(MG_EARG, "onnx load: Range: its bounds must be constants");
    set_f(&a, MG_OP_ARANGE, "start", mg_tensor_get_f64(x, 0));
    set_f(&a, MG_OP_ARANGE, "stop", mg_tensor_get_f64(y, 0));
    set_f(&a, MG_OP_ARANGE, "step", mg_tensor_get_f64(z, 0));
    set_i(&a, MG_OP_ARANGE, "dtype", x->dtype);
    if ((st = ap(I, MG_OP_ARANGE, 0, NULL, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strncmp(ty, "Reduce", 6)) {
    op = !strcmp(ty, "ReduceMean") ? MG_OP_MEAN : !strcmp(ty, "ReduceSum") ? MG_OP_SUM : !strcmp(ty, "ReduceMax") ? MG_OP_MAX
       : !strcmp(ty, "ReduceMin") ? MG_OP_MIN : !strcmp(ty, "ReduceLogSumExp") ? MG_OP_LOGSUMEXP : MG_OP_PROD;
    if ((st = node_axes(I, n, 1, v, &k))) return st;
    if (k == 0 && attr_int(n, "noop_with_empty_axes", 0)) return out1(I, n, x);
    if ((st = reduce(I, op, x, k, v, (int)attr_int(n, "keepdims", 1), &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "ArgMax") || !strcmp(ty, "ArgMin")) {
    op = ty[3] == 'M' && ty[4] == 'a' ? MG_OP_ARGMAX : MG_OP_ARGMIN;
    if (attr_int(n, "select_last_index", 0)) return mg_seterror(MG_EARG, "onnx load: %s: select_last_index=1 is not supported", ty);
    set_i(&a, op, "axis", ax(I, attr_int(n, "axis", 0), x->ndim));
    set_i(&a, op, "keepdims", attr_int(n, "keepdims", 1));
    if ((st = ap1(I, op, x, &a, &r))) return st;
    if (I->base && ((st = scalar_like(I, I->base, (mg_dtype)r->dtype, &y)) || (st = ap2(I, MG_OP_SUB, r, y, &r)))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "CumSum")) {
    if ((st = input(I, n, 1, 1, &y)) || (st = ints_of(I, y, "axis", v, 1, &k))) return st;
    set_i(&a, MG_OP_CUMSUM, "axis", ax(I, v[0], x->ndim));
    set_i(&a, MG_OP_CUMSUM, "exclusive", attr_int(n, "exclusive", 0));
    set_i(&a, MG_OP_CUMSUM, "reverse", attr_int(n, "reverse", 0));
    if ((st = ap1(I, MG_OP_CUMSUM, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Tile")) {
    if ((st = input(I, n, 1, 1, &y)) || (st = ints_of(I, y, "repeats", v, MG_MAX_DIMS, &k))) return st;
    set_l(&a, MG_OP_TILE, "reps", k, v);
    if ((st = ap1(I, MG_OP_TILE, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Pad")) {
    const char *mode = attr_str(n, "mode", "constant");
    if ((st = input(I, n, 1, 1, &y)) || (st = ints_of(I, y, "pads", v, MG_MAX_LIST, &k))) return st;
    if ((st = input(I, n, 2, 0, &z))) return st;
    if (k != 2 * x->ndim || n->n_input > 3) return mg_seterror(MG_EARG, "onnx load: Pad: pads must cover every axis");
    for (int d = 0; d < x->ndim; d++) w[2 * d] = v[d], w[2 * d + 1] = v[x->ndim + d];
    set_l(&a, MG_OP_PAD, "paddings", k, w);
    if (z) set_f(&a, MG_OP_PAD, "value", mg_tensor_get_f64(z, 0));
    set_i(&a, MG_OP_PAD, "mode", !strcmp(mode, "reflect") ? 1 : !strcmp(mode, "edge") ? 2 : 0);
    if ((st = ap1(I, MG_OP_PAD, x, &a, &r))) return st;
    return out1(I, n, r);
  }
  if (!strcmp(ty, "Split")) {
    int64_t axis = attr_int(n, "axis", 0);
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis >= x->ndim) return mg_seterror(MG_EINDEX, "onnx load: Split: axis out of range");
    int no = (int)n->n_output;
    if (no > MG_MAX_LIST) return mg_seterror(MG_EARG, "onnx load: Split into %d parts", no);
    if ((k = attr_ints(n, "split", v, MG_MAX_LIST)) < 0) {
      if ((st = input(I, n, 1, 0, &y))) return st;
      k = 0;
      if (y && (st = ints_of(I, y, "split", v, MG_MAX_LIST, &k))) return st;
    }
    if (k == 0) {
      int64_t size = x->shape[axis], part = (size + no - 1) / no;
      for (m = 0; m < no; m++) v[m] = size - m * part < part ? size - m * part : part;
      k = no;
    }
    if (k != no) return mg_seterror(MG_EARG, "onnx load: Split: %d sizes for %d outputs", k, no);
    int64_t at = 0;
    for (m = 0; m < no; m++) {
      mg_attrs b = {0};
      int64_t bg[MG_MAX_DIMS] = {0}, en[MG_MAX_DIMS];
      for (int d = 0; d < x->ndim; d++) en[d] = INT64_MAX;
      bg[axis] = at, en[axis] = at + v[m];
      at += v[m];
      set_l(&b, MG_OP_SLICE, "begin", x->ndim, bg);
      set_l(&b, MG_OP_SLICE, "end", x->ndim, en);
      if ((st = ap1(I, MG_OP_SLICE, x, &b, &r))) return st;
      mg_tensor_retain(r);
      if ((st = bind(I, n->output[m], r))) return st;
    }
    return MG_OK;
  }
  return mg_seterror(MG_EARG, "onnx load: operator %s is not supported", ty);
}

/* Every op type of g that is not known, each once, appended to buf. */
static void unknown_ops(const Onnx__GraphProto *g, char *buf, size_t cap) {
  for (size_t i = 0; i < g->n_node; i++) {
    const char *ty = g->node[i]->op_type && g->node[i]->op_type[0] ? g->node[i]->op_type : "(no op_type)";
    int custom = g->node[i]->domain && g->node[i]->domain[0] && strcmp(g->node[i]->domain, "ai.onnx");
    for (size_t a = 0; a < g->node[i]->n_attribute; a++)
      if (g->node[i]->attribute[a]->g) unknown_ops(g->node[i]->attribute[a]->g, buf, cap);
    if (!custom && known(ty)) continue;
    char key[96];
    snprintf(key, sizeof key, "%s%s%s", custom ? g->node[i]->domain : "", custom ? "." : "", ty);
    const char *p = buf;
    size_t kl = strlen(key);
    int dup = 0;
    while (!dup && (p = strstr(p, key))) {
      dup = (p == buf || p[-1] == ' ') && (p[kl] == ',' || !p[kl]);
      p += kl;
    }
    if (dup) continue;
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", key);
  }
}

static mg_status load(mg_ctx *ctx, const char *path, const void *data, size_t len, mg_graph **out);

mg_status mg_onnx_load(mg_ctx *ctx, const char *path, mg_graph **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return mg_seterror(MG_EIO, "onnx load: cannot open %s", path);
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? 2 * cap : 1 << 16;
      if (cap > IM_MAX_FILE) {
        free(buf);
        fclose(f);
        return mg_seterror(MG_EIO, "onnx load: %s is larger than 2 GiB", path);
      }
      uint8_t *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(f);
        return mg_seterror(MG_ENOMEM, "onnx load: out of memory reading %s", path);
      }
      buf = nb;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  fclose(f);
  mg_status st = load(ctx, path, buf, len, out);
  free(buf);
  return st;
}

mg_status mg_onnx_load_mem(mg_ctx *ctx, const void *data, size_t len, mg_graph **out) {
  *out = NULL;
  return load(ctx, "the model", data, len, out);
}

static mg_status load(mg_ctx *ctx, const char *path, const void *data, size_t len, mg_graph **out) {
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, data);
  if (!m) return mg_seterror(MG_EIO, "onnx load: %s is not an ONNX model (the protobuf does not parse)", path);
  mg_status st = MG_OK;
  const Onnx__GraphProto *g = m->graph;
  if (!g || g->n_output == 0) {
    onnx__model_proto__free_unpacked(m, NULL);
    return mg_seterror(MG_EIO, "onnx load: %s has no graph or no outputs: not an ONNX model", path);
  }
  char bad[1024] = "";
  unknown_ops(g, bad, sizeof bad);
  if (bad[0]) {
    onnx__model_proto__free_unpacked(m, NULL);
    return mg_seterror(MG_EARG, "onnx load: %s uses operators moongrad does not support: %s", path, bad);
  }
  im I = {.ctx = ctx, .base = mg_ctx_index_base(ctx), .opset = 17};
  for (size_t i = 0; i < m->n_opset_import; i++)
    if (!m->opset_import[i]->domain || !m->opset_import[i]->domain[0]) I.opset = m->opset_import[i]->version;
  mg_graph *tg = NULL;
  int ended = 0;  /* mg_trace_end pops the trace even when it fails */
  if ((st = mg_trace_begin(ctx, g->name && g->name[0] ? g->name : "onnx", &tg))) goto done;
  if (!st) st = bind_inits(&I, g);  /* first: older exporters also list initializers as inputs */
  for (size_t i = 0; i < g->n_input && !st; i++) {
    const Onnx__ValueInfoProto *vi = g->input[i];
    if (!vi->name) { st = mg_seterror(MG_EARG, "onnx load: a graph input has no name"); break; }
    if (lookup(&I, vi->name)) continue;  /* an initializer listed as an input (older exporters) */
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->shape) {
      st = mg_seterror(MG_EARG, "onnx load: input %s is not a tensor of known rank", vi->name);
      break;
    }
    int ok;
    mg_dtype dt = mg_of_onnx(tp->tensor_type->elem_type, &ok);
    const Onnx__TensorShapeProto *sp = tp->tensor_type->shape;
    if (!ok || sp->n_dim > MG_MAX_DIMS) {
      st = mg_seterror(MG_EARG, "onnx load: input %s has a type or rank moongrad does not read", vi->name);
      break;
    }
    int64_t shape[MG_MAX_DIMS];
    for (size_t d = 0; d < sp->n_dim; d++)
      shape[d] = sp->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && sp->dim[d]->dim_value >= 0
               ? sp->dim[d]->dim_value : -1;
    mg_tensor *t = NULL;
    if (!(st = mg_trace_placeholder(ctx, dt, (int)sp->n_dim, shape, &t))) st = bind(&I, vi->name, t);
  }
  for (size_t i = 0; i < g->n_node && !st; i++) {  /* do_nodes without binding the initializers again */
    const Onnx__NodeProto *n = g->node[i];
    char what[160];
    snprintf(what, sizeof what, "%s node %s", n->op_type ? n->op_type : "?", n->name && n->name[0] ? n->name : "(unnamed)");
    I.op = what;
    st = n->op_type ? do_node(&I, n) : mg_seterror(MG_EARG, "onnx load: a node has no op_type");
  }
  if (!st) {
    mg_tensor **outs = calloc(g->n_output, sizeof *outs);
    if (!outs) st = mg_seterror(MG_ENOMEM, "onnx load: out of memory");
    for (size_t k = 0; !st && k < g->n_output; k++) {
      outs[k] = g->output[k]->name ? lookup(&I, g->output[k]->name) : NULL;
      if (!outs[k]) st = mg_seterror(MG_EARG, "onnx load: output %s is not defined by any node",
                                     g->output[k]->name ? g->output[k]->name : "(unnamed)");
    }
    if (!st) st = mg_trace_end(ctx, tg, (int)g->n_output, outs), ended = 1;
    free(outs);
  }
  if (!ended && tg) mg_trace_abort(ctx);
  if (!st) {
    *out = tg;
    tg = NULL;
  }
done:
  for (size_t i = 0; i < I.n; i++) mg_tensor_release(I.env[i].t);
  free(I.env);
  if (tg) mg_graph_release(tg);
  onnx__model_proto__free_unpacked(m, NULL);
  return st;
}
