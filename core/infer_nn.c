/*
 * infer_nn.c — shape and dtype inference for the neural-network ops:
 * convolutions and their two gradients, transposed convolution, pooling and
 * its gradients, batch normalisation, dropout, the embedding gradient and the
 * fused softmax cross-entropies.
 *
 * Layout is NHWC (batch, height, width, channels) and filters are
 * (height, width, in/groups, out), as in TensorFlow and Keras. Window
 * geometry (nn.h) is computed here and again by the kernels from the same
 * attributes, so everything a kernel relies on is checked once, here: ranks,
 * float dtypes, attribute ranges (every size, stride and dilation is kept
 * below 2^31 so no index arithmetic can overflow), and that the shapes of
 * gradients match the forward op they belong to. Index values (labels,
 * embedding rows) are data, so the kernels check those.
 */
#include "nn.h"
#include <stdint.h>

#define NAME(c) ((c)->info->name)
#define NN_MAX 2147483647LL  /* largest size, stride or dilation accepted */

static mg_status nn_rank(const mg_call *c, const char *arg, const mg_tensor *t, int ndim, const char *layout) {
  char sb[MG_SHAPE_BUF];
  if (t->ndim == ndim) return MG_OK;
  return mg_seterror(MG_ESHAPE, "%s: %s must be %d-d %s, got shape %s", NAME(c), arg, ndim, layout,
                     mg_shape_str(t->ndim, t->shape, sb, sizeof sb));
}

/* The promoted dtype of inputs [0, n), which must be floating point. */
static mg_status nn_float(const mg_call *c, int n, mg_dtype *dt) {
  *dt = mg_promote_inputs(c->in, n);
  if (mg_dtype_is_float(*dt)) return MG_OK;
  char names[160] = "";
  for (int i = 0; i < n; i++) {
    if (i) strncat(names, i == n - 1 ? " and " : ", ", sizeof names - strlen(names) - 1);
    strncat(names, mg_dtype_name((mg_dtype)c->in[i]->dtype), sizeof names - strlen(names) - 1);
  }
  return mg_seterror(MG_EDTYPE, "%s: needs floating-point inputs (float32 or float64), got %s", NAME(c), names);
}

static void nn_out(mg_meta *out, mg_dtype dt, int ndim, const int64_t *shape) {
  out->dtype = dt;
  out->ndim = ndim;
  memcpy(out->shape, shape, (size_t)ndim * sizeof(int64_t));
}

/* A (height, width) attribute: absent gives `def`, one value is used for
 * both; every value must lie in [lo, NN_MAX]. */
static mg_status nn_pair(const mg_call *c, int k, const int64_t def[2], int64_t lo, int64_t out[2]) {
  const char *arg = c->info->attrs[k].name;
  int n = A_N(c, k);
  if (n > 2)
    return mg_seterror(MG_EARG, "%s: %s takes one value or two (height, width), got %d", NAME(c), arg, n);
  out[0] = n == 0 ? def[0] : A_LIST(c, k)[0];
  out[1] = n == 0 ? def[1] : A_LIST(c, k)[n - 1];
  for (int i = 0; i < 2; i++)
    if (out[i] < lo || out[i] > NN_MAX)
      return mg_seterror(MG_EARG, "%s: %s must be %s %lld, got (%lld, %lld)", NAME(c), arg,
                         out[i] < lo ? "at least" : "at most", (long long)(out[i] < lo ? lo : NN_MAX),
                         (long long)out[0], (long long)out[1]);
  return MG_OK;
}

static mg_status nn_padding(const mg_call *c, int k, int *pad) {
  *pad = (int)A_I(c, k);
  if (*pad == MG_PAD_VALID || *pad == MG_PAD_SAME) return MG_OK;
  return mg_seterror(MG_EARG, "%s: padding must be \"valid\" or \"same\"", NAME(c));
}

/* Output length and leading padding of one spatial axis (TF's rules);
 * keff is the dilated window. Errors when a valid window does not fit. */
static mg_status nn_axis(const mg_call *c, const char *what, const char *axis, int64_t in, int64_t keff,
                         int64_t s, int pad, int dilated, int64_t *out, int64_t *lead) {
  if (pad == MG_PAD_SAME) {
    *out = in == 0 ? 0 : (in - 1) / s + 1;
    int64_t total = (*out - 1) * s + keff - in;
    *lead = total > 0 ? total / 2 : 0;
    return MG_OK;
  }
  *lead = 0;
  if (in < keff)
    return mg_seterror(MG_ESHAPE, "%s: %s has %s %lld, smaller than the %swindow's %lld (padding \"valid\")", NAME(c),
                       what, axis, (long long)in, dilated ? "(dilated) " : "", (long long)keff);
  *out = (in - keff) / s + 1;
  return MG_OK;
}

static mg_status nn_sizes(const mg_call *c, const char *what, const int64_t *s, int n) {
  char sb[MG_SHAPE_BUF];
  for (int i = 0; i < n; i++)
    if (s[i] < 0 || s[i] > NN_MAX)
      return mg_seterror(MG_ESHAPE, "%s: %s %s has a size outside [0, %lld]", NAME(c), what,
                         mg_shape_str(n, s, sb, sizeof sb), NN_MAX);
  return MG_OK;
}

mg_status mg_conv_geom_init(const mg_call *c, const int64_t *xs, const int64_t *ws, const char *what,
                            mg_conv_slots k, mg_conv_geom *g) {
  static const int64_t one[2] = {1, 1};
  char sx[MG_SHAPE_BUF], sw[MG_SHAPE_BUF];
  int64_t st[2], dil[2];
  int pad;
  mg_status e = nn_sizes(c, what, xs, 4);
  if (!e) e = nn_sizes(c, "the filter", ws, 4);
  if (!e) e = nn_pair(c, k.strides, one, 1, st);
  if (!e) e = nn_pair(c, k.dilation, one, 1, dil);
  if (!e) e = nn_padding(c, k.padding, &pad);
  if (e) return e;
  g->groups = k.groups >= 0 ? A_I(c, k.groups) : 1;
  if (g->groups < 1 || g->groups > NN_MAX)
    return mg_seterror(MG_EARG, "%s: groups must be at least 1, got %lld", NAME(c), (long long)g->groups);
  g->n = xs[0], g->ih = xs[1], g->iw = xs[2], g->ci = xs[3];
  g->kh = ws[0], g->kw = ws[1], g->co = ws[3];
  g->sh = st[0], g->sw = st[1], g->dh = dil[0], g->dw = dil[1];
  if (g->ci % g->groups || g->co % g->groups || ws[2] * g->groups != g->ci)
    return mg_seterror(MG_ESHAPE,
                       "%s: filter %s does not fit %s %s with groups=%lld (the filter must be (height, width, "
                       "in_channels/groups, out_channels), both channel counts divisible by groups)",
                       NAME(c), mg_shape_str(4, ws, sw, sizeof sw), what, mg_shape_str(4, xs, sx, sizeof sx),
                       (long long)g->groups);
  if (g->kh == 0 || g->kw == 0)
    return mg_seterror(MG_ESHAPE, "%s: filter %s has an empty window", NAME(c), mg_shape_str(4, ws, sw, sizeof sw));
  int64_t keh = (g->kh - 1) * g->dh + 1, kew = (g->kw - 1) * g->dw + 1;  /* < 2^62: both factors < 2^31 */
  if (keh > NN_MAX || kew > NN_MAX)
    return mg_seterror(MG_EARG, "%s: the dilated window (%lld, %lld) is too large", NAME(c), (long long)keh, (long long)kew);
  if ((e = nn_axis(c, what, "height", g->ih, keh, g->sh, pad, g->dh > 1, &g->oh, &g->pt))) return e;
  return nn_axis(c, what, "width", g->iw, kew, g->sw, pad, g->dw > 1, &g->ow, &g->pl);
}

/* ---- convolutions ------------------------------------------------------------ */

static const mg_conv_slots conv_slots = {0, 1, 2, 3};       /* conv2d */
static const mg_conv_slots conv_grad_slots = {1, 2, 3, 4};  /* the two gradients */

mg_status infer_conv2d(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *w = c->in[1];
  mg_conv_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, 4, "(batch, height, width, channels)");
  if (!st) st = nn_rank(c, "w", w, 4, "(height, width, in_channels/groups, out_channels)");
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_conv_geom_init(c, x->shape, w->shape, "x", conv_slots, &g);
  if (st) return st;
  nn_out(out, dt, 4, (int64_t[]){g.n, g.oh, g.ow, g.co});
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* A required 4-value shape attribute in slot k. */
static mg_status nn_shape4(const mg_call *c, int k, const char *layout) {
  if (A_N(c, k) == 4) return MG_OK;
  if (!A_SET(c, k)) return mg_seterror(MG_EARG, "%s: the '%s' argument is required", NAME(c), c->info->attrs[k].name);
  return mg_seterror(MG_EARG, "%s: %s must have 4 values %s, got %d", NAME(c), c->info->attrs[k].name, layout,
                     A_N(c, k));
}

/* dy must have the shape of the convolution's output. */
static mg_status nn_check_dy(const mg_call *c, const mg_tensor *dy, const mg_conv_geom *g, const char *dyname) {
  int64_t want[4] = {g->n, g->oh, g->ow, g->co};
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (dy->ndim == 4 && memcmp(dy->shape, want, sizeof want) == 0) return MG_OK;
  return mg_seterror(MG_ESHAPE, "%s: %s has shape %s but the convolution's output has shape %s", NAME(c), dyname,
                     mg_shape_str(dy->ndim, dy->shape, sa, sizeof sa), mg_shape_str(4, want, sb, sizeof sb));
}

mg_status infer_conv2d_backprop_input(const mg_call *c, mg_meta *out) {
  const mg_tensor *dy = c->in[0], *w = c->in[1];
  mg_conv_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "w", w, 4, "(height, width, in_channels/groups, out_channels)");
  if (!st) st = nn_shape4(c, 0, "(batch, height, width, channels)");
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_conv_geom_init(c, A_LIST(c, 0), w->shape, "input_shape", conv_grad_slots, &g);
  if (!st) st = nn_check_dy(c, dy, &g, "dy");
  if (st) return st;
  nn_out(out, dt, 4, A_LIST(c, 0));
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

mg_status infer_conv2d_backprop_filter(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *dy = c->in[1];
  mg_conv_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, 4, "(batch, height, width, channels)");
  if (!st) st = nn_shape4(c, 0, "(height, width, in_channels/groups, out_channels)");
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_conv_geom_init(c, x->shape, A_LIST(c, 0), "x", conv_grad_slots, &g);
  if (!st) st = nn_check_dy(c, dy, &g, "dy");
  if (st) return st;
  nn_out(out, dt, 4, A_LIST(c, 0));
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* conv2d_transpose's schema: strides 0, padding 1, output_padding 2, dilation 3. */
static const mg_conv_slots transpose_slots = {0, 1, 3, -1};

/* Keras's deconv_output_length per axis. */
mg_status mg_conv_transpose_size(const mg_call *c, const mg_tensor *x, const mg_tensor *w, int64_t out[2]) {
  static const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
  int64_t st[2], dil[2], op[2];
  int pad;
  mg_status e = nn_pair(c, 0, one, 1, st);
  if (!e) e = nn_pair(c, 3, one, 1, dil);
  if (!e) e = nn_pair(c, 2, zero, 0, op);
  if (!e) e = nn_padding(c, 1, &pad);
  if (!e) e = nn_sizes(c, "x", x->shape, 4);
  if (!e) e = nn_sizes(c, "the filter", w->shape, 4);
  if (e) return e;
  for (int i = 0; i < 2; i++) {
    int64_t in = x->shape[1 + i], keff = (w->shape[i] - 1) * dil[i] + 1;
    if (w->shape[i] == 0) return mg_seterror(MG_ESHAPE, "%s: the filter has an empty window", NAME(c));
    if (keff > NN_MAX) return mg_seterror(MG_EARG, "%s: the dilated window is too large", NAME(c));
    if (A_N(c, 2) && op[i] >= st[i])
      return mg_seterror(MG_EARG, "%s: output_padding (%lld, %lld) must be smaller than strides (%lld, %lld)",
                         NAME(c), (long long)op[0], (long long)op[1], (long long)st[0], (long long)st[1]);
    if (!A_N(c, 2))
      out[i] = pad == MG_PAD_SAME ? in * st[i] : in * st[i] + (keff > st[i] ? keff - st[i] : 0);
    else
      out[i] = (in - 1) * st[i] + keff - (pad == MG_PAD_SAME ? 2 * (keff / 2) : 0) + op[i];
    if (out[i] < 0 || out[i] > NN_MAX)
      return mg_seterror(MG_ESHAPE, "%s: the output would have %s %lld", NAME(c), i ? "width" : "height",
                         (long long)out[i]);
  }
  return MG_OK;
}

mg_status infer_conv2d_transpose(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *w = c->in[1];
  char sx[MG_SHAPE_BUF], sw[MG_SHAPE_BUF];
  mg_dtype dt;
  int64_t hw[2];
  mg_conv_geom g;
  mg_status st = nn_rank(c, "x", x, 4, "(batch, height, width, channels)");
  if (!st) st = nn_rank(c, "w", w, 4, "(height, width, out_channels, in_channels)");
  if (!st) st = nn_float(c, 2, &dt);
  if (st) return st;
  if (w->shape[3] != x->shape[3])
    return mg_seterror(MG_ESHAPE, "%s: filter %s does not fit x %s (the filter must be (height, width, out_channels, "
                       "in_channels) with in_channels = x's channels)", NAME(c),
                       mg_shape_str(4, w->shape, sw, sizeof sw), mg_shape_str(4, x->shape, sx, sizeof sx));
  if ((st = mg_conv_transpose_size(c, x, w, hw))) return st;
  int64_t shape[4] = {x->shape[0], hw[0], hw[1], w->shape[2]};
  if ((st = mg_conv_geom_init(c, shape, w->shape, "the output", transpose_slots, &g))) return st;
  if (g.oh != x->shape[1] || g.ow != x->shape[2])
    return mg_seterror(MG_ESHAPE, "%s: an output of height %lld and width %lld does not convolve back to x %s",
                       NAME(c), (long long)hw[0], (long long)hw[1], mg_shape_str(4, x->shape, sx, sizeof sx));
  nn_out(out, dt, 4, shape);
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* ---- pooling ------------------------------------------------------------------ */

mg_status mg_pool_geom_init(const mg_call *c, const int64_t *xs, int k, mg_pool_geom *g) {
  static const int64_t two[2] = {2, 2};
  int64_t ks[2], st[2];
  int pad;
  mg_status e = nn_sizes(c, "x", xs, 4);
  if (!e) e = nn_pair(c, k, two, 1, ks);
  if (!e) e = nn_pair(c, k + 1, ks, 1, st);
  if (!e) e = nn_padding(c, k + 2, &pad);
  if (e) return e;
  g->n = xs[0], g->ih = xs[1], g->iw = xs[2], g->ch = xs[3];
  g->kh = ks[0], g->kw = ks[1], g->sh = st[0], g->sw = st[1];
  if ((e = nn_axis(c, "x", "height", g->ih, g->kh, g->sh, pad, 0, &g->oh, &g->pt))) return e;
  return nn_axis(c, "x", "width", g->iw, g->kw, g->sw, pad, 0, &g->ow, &g->pl);
}

/* max_pool2d: float32, float64, int32, int64 and uint8 (TF's max_pool);
 * avg_pool2d: floats only (TF's avg_pool: a mean of integers is no integer). */
static mg_status nn_pool_dtype(const mg_call *c, mg_dtype *dt) {
  *dt = (mg_dtype)c->in[0]->dtype;
  if (c->op == MG_OP_MAX_POOL2D) {
    if (*dt != MG_BOOL) return MG_OK;
    return mg_seterror(MG_EDTYPE, "max_pool2d: x is bool; it takes float32, float64, int32, int64 or uint8 "
                       "(cast a bool mask to uint8 first)");
  }
  if (mg_dtype_is_float(*dt)) return MG_OK;
  return mg_seterror(MG_EDTYPE, "%s: needs floating-point inputs (float32 or float64), got %s; average pooling "
                     "is float only, as in TF (cast x to float32 first)", NAME(c), mg_dtype_name(*dt));
}

mg_status infer_pool2d(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  mg_pool_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, 4, "(batch, height, width, channels)");
  if (!st) st = nn_pool_dtype(c, &dt);
  if (!st) st = mg_pool_geom_init(c, x->shape, 0, &g);
  if (st) return st;
  nn_out(out, dt, 4, (int64_t[]){g.n, g.oh, g.ow, g.ch});
  return MG_OK;
}

/* A pooling gradient input: `t` must have shape `want`. */
static mg_status nn_check_shape(const mg_call *c, const char *arg, const mg_tensor *t, const int64_t *want,
                                const char *what) {
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (t->ndim == 4 && memcmp(t->shape, want, 4 * sizeof(int64_t)) == 0) return MG_OK;
  return mg_seterror(MG_ESHAPE, "%s: %s has shape %s but %s has shape %s", NAME(c), arg,
                     mg_shape_str(t->ndim, t->shape, sa, sizeof sa), what, mg_shape_str(4, want, sb, sizeof sb));
}

/* max_pool2d_grad(x, dy): dy is shaped like the pooled output; the result like x. */
mg_status infer_max_pool2d_grad(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  mg_pool_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, 4, "(batch, height, width, channels)");
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_pool_geom_init(c, x->shape, 0, &g);
  if (!st) st = nn_check_shape(c, "dy", c->in[1], (int64_t[]){g.n, g.oh, g.ow, g.ch}, "the pooled output");
  if (st) return st;
  nn_out(out, dt, 4, x->shape);
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;
}

/* max_pool2d_grad_grad(x, gx): gx is shaped like x; the result like the pooled output. */
mg_status infer_max_pool2d_grad_grad(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  mg_pool_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, 4, "(batch, height, width, channels)");
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_pool_geom_init(c, x->shape, 0, &g);
  if (!st) st = nn_check_shape(c, "gx", c->in[1], x->shape, "x");
  if (st) return st;
  nn_out(out, dt, 4, (int64_t[]){g.n, g.oh, g.ow, g.ch});
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;
}

/* avg_pool2d_grad(dy, input_shape, ...): the result has input_shape. */
mg_status infer_avg_pool2d_grad(const mg_call *c, mg_meta *out) {
  mg_pool_geom g;
  mg_dtype dt;
  mg_status st = nn_shape4(c, 0, "(batch, height, width, channels)");
  if (!st) st = nn_float(c, 1, &dt);
  if (!st) st = mg_pool_geom_init(c, A_LIST(c, 0), 1, &g);
  if (!st) st = nn_check_shape(c, "dy", c->in[0], (int64_t[]){g.n, g.oh, g.ow, g.ch}, "the pooled output");
  if (st) return st;
  nn_out(out, dt, 4, A_LIST(c, 0));
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* ---- normalisation, dropout, embedding ------------------------------------------- */

/* batch_norm(x, mean, variance, offset, scale): the four parameters must
 * broadcast to x's shape without changing it. */
mg_status infer_batch_norm(const mg_call *c, mg_meta *out) {
  static const char *const names[5] = {"x", "mean", "variance", "offset", "scale"};
  const mg_tensor *x = c->in[0];
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  mg_dtype dt;
  mg_status st = nn_float(c, 5, &dt);
  if (st) return st;
  for (int i = 1; i < 5; i++) {
    const mg_tensor *p = c->in[i];
    int bad = p->ndim > x->ndim;
    for (int d = 0; d < p->ndim && !bad; d++) {
      int64_t s = p->shape[p->ndim - 1 - d];
      bad = s != 1 && s != x->shape[x->ndim - 1 - d];
    }
    if (bad)
      return mg_seterror(MG_ESHAPE, "%s: %s of shape %s does not broadcast to x's shape %s", NAME(c), names[i],
                         mg_shape_str(p->ndim, p->shape, sa, sizeof sa), mg_shape_str(x->ndim, x->shape, sb, sizeof sb));
  }
  if (!(A_F(c, 0) >= 0))
    return mg_seterror(MG_EARG, "%s: epsilon must be >= 0, got %g", NAME(c), A_F(c, 0));
  nn_out(out, dt, x->ndim, x->shape);
  for (int i = 0; i < MG_CAST_SLOTS; i++) out->cast[i] = dt;
  out->cast_rest = dt;
  return MG_OK;
}

/* dropout(x, seed, rate): seed is one integer (a tensor, so that a staged
 * function can feed it a fresh random value on every run). */
mg_status infer_dropout(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *seed = c->in[1];
  char sb[MG_SHAPE_BUF];
  if (!mg_dtype_is_float((mg_dtype)x->dtype))
    return mg_seterror(MG_EDTYPE, "%s: x must be float32 or float64, got %s", NAME(c), mg_dtype_name((mg_dtype)x->dtype));
  if (!mg_dtype_is_int((mg_dtype)seed->dtype) || mg_tensor_numel(seed) != 1)
    return mg_seterror(MG_EARG, "%s: seed must be one integer (a number or a 1-element integer tensor), got a %s "
                       "tensor of shape %s", NAME(c), mg_dtype_name((mg_dtype)seed->dtype),
                       mg_shape_str(seed->ndim, seed->shape, sb, sizeof sb));
  if (A_N(c, 0) == 0) return mg_seterror(MG_EARG, "%s: the 'rate' argument is required", NAME(c));
  if (!(A_F(c, 0) >= 0 && A_F(c, 0) < 1))
    return mg_seterror(MG_EARG, "%s: rate must be in [0, 1), got %g", NAME(c), A_F(c, 0));
  nn_out(out, (mg_dtype)x->dtype, x->ndim, x->shape);
  out->cast[1] = MG_INT64;
  return MG_OK;
}

/* take_grad(g, index, axis, size): the adjoint of take(x, index, axis) for an
 * x with `size` rows along axis; g has take's output shape. */
mg_status infer_take_grad(const mg_call *c, mg_meta *out) {
  const mg_tensor *g = c->in[0], *idx = c->in[1];
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (!mg_dtype_is_float((mg_dtype)g->dtype))
    return mg_seterror(MG_EDTYPE, "%s: g must be float32 or float64, got %s", NAME(c), mg_dtype_name((mg_dtype)g->dtype));
  if (!mg_dtype_is_int((mg_dtype)idx->dtype))
    return mg_seterror(MG_EDTYPE, "%s: index must be an integer tensor, got %s", NAME(c),
                       mg_dtype_name((mg_dtype)idx->dtype));
  if (A_N(c, 1) == 0) return mg_seterror(MG_EARG, "%s: the 'size' argument is required", NAME(c));
  int nd = g->ndim - idx->ndim + 1, a = 0;
  if (nd < 1)
    return mg_seterror(MG_ESHAPE, "%s: g of shape %s has fewer dimensions than index %s", NAME(c),
                       mg_shape_str(g->ndim, g->shape, sa, sizeof sa), mg_shape_str(idx->ndim, idx->shape, sb, sizeof sb));
  mg_status st = A_SET(c, 0) ? mg_norm_axis(c, "axis", A_I(c, 0), nd, &a) : MG_OK;
  if (st) return st;
  for (int d = 0; d < idx->ndim; d++)
    if (g->shape[a + d] != idx->shape[d])
      return mg_seterror(MG_ESHAPE, "%s: g of shape %s does not hold index %s at axis %d", NAME(c),
                         mg_shape_str(g->ndim, g->shape, sa, sizeof sa), mg_shape_str(idx->ndim, idx->shape, sb, sizeof sb),
                         a + (c->ctx ? c->ctx->index_base : 0));
  if (A_I(c, 1) < 0) return mg_seterror(MG_EARG, "%s: size must be >= 0, got %lld", NAME(c), (long long)A_I(c, 1));
  out->dtype = (mg_dtype)g->dtype;
  out->ndim = nd;
  for (int d = 0; d < nd; d++) out->shape[d] = d < a ? g->shape[d] : d == a ? A_I(c, 1) : g->shape[d + idx->ndim - 1];
  out->cast[1] = MG_INT64;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* index_add(x, index, src, axis): x's shape and dtype; src must have
 * take(x, index, axis)'s shape and x's dtype. */
mg_status infer_index_add(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1], *src = c->in[2];
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF], sc[MG_SHAPE_BUF], sw[MG_SHAPE_BUF];
  if (!mg_dtype_is_float((mg_dtype)x->dtype))
    return mg_seterror(MG_EDTYPE, "%s: x must be float32 or float64, got %s", NAME(c), mg_dtype_name((mg_dtype)x->dtype));
  if (!mg_dtype_is_int((mg_dtype)idx->dtype))
    return mg_seterror(MG_EDTYPE, "%s: index must be an integer tensor, got %s", NAME(c),
                       mg_dtype_name((mg_dtype)idx->dtype));
  if (src->dtype != x->dtype)
    return mg_seterror(MG_EDTYPE, "%s: src must have x's dtype %s, got %s", NAME(c), mg_dtype_name((mg_dtype)x->dtype),
                       mg_dtype_name((mg_dtype)src->dtype));
  if (x->ndim < 1) return mg_seterror(MG_ESHAPE, "%s: x must have at least one dimension, got a 0-d tensor", NAME(c));
  int a = 0;
  mg_status st = A_SET(c, 0) ? mg_norm_axis(c, "axis", A_I(c, 0), x->ndim, &a) : MG_OK;
  if (st) return st;
  int64_t want[MG_MAX_DIMS];
  int nd = x->ndim - 1 + idx->ndim;
  if (nd > MG_MAX_DIMS)
    return mg_seterror(MG_ESHAPE, "%s: x %s and index %s give src more than %d dimensions", NAME(c),
                       mg_shape_str(x->ndim, x->shape, sa, sizeof sa), mg_shape_str(idx->ndim, idx->shape, sb, sizeof sb),
                       MG_MAX_DIMS);
  for (int d = 0; d < nd; d++)
    want[d] = d < a ? x->shape[d] : d < a + idx->ndim ? idx->shape[d - a] : x->shape[d - idx->ndim + 1];
  if (src->ndim != nd || (nd && memcmp(src->shape, want, (size_t)nd * sizeof(int64_t))))
    return mg_seterror(MG_ESHAPE, "%s: src has shape %s; x %s and index %s along axis %d need %s", NAME(c),
                       mg_shape_str(src->ndim, src->shape, sc, sizeof sc), mg_shape_str(x->ndim, x->shape, sa, sizeof sa),
                       mg_shape_str(idx->ndim, idx->shape, sb, sizeof sb), a + (c->ctx ? c->ctx->index_base : 0),
                       mg_shape_str(nd, want, sw, sizeof sw));
  nn_out(out, (mg_dtype)x->dtype, x->ndim, x->shape);
  out->cast[1] = MG_INT64;
  return MG_OK;
}

/* ---- softmax cross-entropy ----------------------------------------------------------- */

/* Classes lie along the last axis of logits; `labels` is checked by the caller. */
static mg_status nn_logits(const mg_call *c, const mg_tensor *logits) {
  if (logits->ndim >= 1) return MG_OK;
  return mg_seterror(MG_ESHAPE, "%s: logits must have at least one dimension (classes last), got a 0-d tensor", NAME(c));
}

static mg_status nn_same_shape(const mg_call *c, const char *an, const mg_tensor *a, const char *bn, const int64_t *bs,
                               int bnd) {
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (a->ndim == bnd && (bnd == 0 || memcmp(a->shape, bs, (size_t)bnd * sizeof(int64_t)) == 0)) return MG_OK;
  return mg_seterror(MG_ESHAPE, "%s: %s has shape %s but %s has shape %s", NAME(c), an,
                     mg_shape_str(a->ndim, a->shape, sa, sizeof sa), bn, mg_shape_str(bnd, bs, sb, sizeof sb));
}

/* softmax_cross_entropy_with_logits(logits, labels) and its gradient (…, g). */
mg_status infer_softmax_xent(const mg_call *c, mg_meta *out) {
  const mg_tensor *lg = c->in[0];
  mg_dtype dt;
  mg_status st = nn_logits(c, lg);
  if (!st) st = nn_same_shape(c, "labels", c->in[1], "logits", lg->shape, lg->ndim);
  if (!st && c->nin == 3) st = nn_same_shape(c, "g", c->in[2], "the loss (logits without the class axis)", lg->shape, lg->ndim - 1);
  if (!st) st = nn_float(c, c->nin, &dt);
  if (st) return st;
  nn_out(out, dt, c->nin == 3 ? lg->ndim : lg->ndim - 1, lg->shape);
  for (int i = 0; i < c->nin; i++) out->cast[i] = dt;
  return MG_OK;
}

/* sparse_softmax_cross_entropy_with_logits(logits, labels) and its gradient (…, g). */
mg_status infer_sparse_softmax_xent(const mg_call *c, mg_meta *out) {
  const mg_tensor *lg = c->in[0], *lb = c->in[1];
  mg_dtype dt;
  mg_status st = nn_logits(c, lg);
  if (st) return st;
  if (!mg_dtype_is_int((mg_dtype)lb->dtype))
    return mg_seterror(MG_EDTYPE, "%s: labels must be an integer tensor of class indices, got %s", NAME(c),
                       mg_dtype_name((mg_dtype)lb->dtype));
  st = nn_same_shape(c, "labels", lb, "logits without the class axis", lg->shape, lg->ndim - 1);
  if (!st && c->nin == 3) st = nn_same_shape(c, "g", c->in[2], "the loss (logits without the class axis)", lg->shape, lg->ndim - 1);
  if (st) return st;
  mg_tensor *fl[2] = {c->in[0], c->in[c->nin - 1]};
  dt = mg_promote_inputs(fl, c->nin == 3 ? 2 : 1);
  if (!mg_dtype_is_float(dt))
    return mg_seterror(MG_EDTYPE, "%s: logits must be float32 or float64, got %s", NAME(c), mg_dtype_name(dt));
  nn_out(out, dt, c->nin == 3 ? lg->ndim : lg->ndim - 1, lg->shape);
  out->cast[0] = dt;
  out->cast[1] = MG_INT64;
  if (c->nin == 3) out->cast[2] = dt;
  return MG_OK;
}
