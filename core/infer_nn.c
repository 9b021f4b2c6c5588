/*
 * infer_nn.c — shape and dtype inference for the neural-network ops:
 * convolutions and their two gradients, transposed convolution, pooling and
 * its gradients, batch normalisation, dropout, the embedding gradient and the
 * fused softmax cross-entropies.
 *
 * Layout is channels-last (NWC, NHWC, NDHWC) and filters are (spatial...,
 * in/groups, out), as in TensorFlow and Keras; one set of functions serves
 * the 1-, 2- and 3-d ops (mg_nn_spatial tells them apart). Window
 * geometry (nn.h) is computed here and again by the kernels from the same
 * attributes, so everything a kernel relies on is checked once, here: ranks,
 * float dtypes, attribute ranges (every size, stride and dilation is kept
 * below 2^31 so no index arithmetic can overflow), and that the shapes of
 * gradients match the forward op they belong to. Index values (labels,
 * embedding rows) are data, so the kernels check those.
 */
#include "nn.h"
#include <stdint.h>
#include <stdio.h>

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

/* ---- window geometry shared by convolutions, pooling and their gradients ----- */

int mg_nn_spatial(mg_op op) {
  switch (op) {
  case MG_OP_CONV1D: case MG_OP_CONV1D_BACKPROP_INPUT: case MG_OP_CONV1D_BACKPROP_FILTER:
  case MG_OP_CONV1D_TRANSPOSE: case MG_OP_MAX_POOL1D: case MG_OP_MAX_POOL1D_GRAD: case MG_OP_MAX_POOL1D_GRAD_GRAD:
  case MG_OP_AVG_POOL1D: case MG_OP_AVG_POOL1D_GRAD:
    return 1;
  case MG_OP_CONV3D: case MG_OP_CONV3D_BACKPROP_INPUT: case MG_OP_CONV3D_BACKPROP_FILTER:
  case MG_OP_CONV3D_TRANSPOSE: case MG_OP_MAX_POOL3D: case MG_OP_MAX_POOL3D_GRAD: case MG_OP_MAX_POOL3D_GRAD_GRAD:
  case MG_OP_AVG_POOL3D: case MG_OP_AVG_POOL3D_GRAD:
    return 3;
  default:
    return 2;
  }
}

/* Names and layouts by the number of spatial axes (index nsp - 1). */
static const char *const nn_axes_list[3] = {"width", "height, width", "depth, height, width"};
static const char *const nn_x_layout[3] = {"(batch, width, channels)", "(batch, height, width, channels)",
                                           "(batch, depth, height, width, channels)"};
static const char *const nn_w_layout[3] = {"(width, in_channels/groups, out_channels)",
                                           "(height, width, in_channels/groups, out_channels)",
                                           "(depth, height, width, in_channels/groups, out_channels)"};
static const char *const nn_wt_layout[3] = {"(width, out_channels, in_channels)",
                                            "(height, width, out_channels, in_channels)",
                                            "(depth, height, width, out_channels, in_channels)"};
static const char *const nn_axis3[3] = {"depth", "height", "width"};

/* A per-spatial-axis attribute in slot k: absent gives `def` (3-d, aligned
 * to depth, height, width), one value is used for every axis, else one per
 * axis; every value must lie in [lo, NN_MAX]. Axes the op lacks get 1. */
static mg_status nn_spatial_attr(const mg_call *c, int k, int nsp, const int64_t def[3], int64_t lo, int64_t out[3]) {
  const char *arg = c->info->attrs[k].name;
  int n = A_N(c, k), off = 3 - nsp;
  if (n > 1 && n != nsp) {
    if (nsp == 1) return mg_seterror(MG_EARG, "%s: %s takes one value (width), got %d", NAME(c), arg, n);
    return mg_seterror(MG_EARG, "%s: %s takes one value or %s (%s), got %d", NAME(c), arg, nsp == 2 ? "two" : "three",
                       nn_axes_list[nsp - 1], n);
  }
  for (int i = 0; i < 3; i++) out[i] = 1;
  for (int i = 0; i < nsp; i++) out[off + i] = n == 0 ? def[off + i] : A_LIST(c, k)[n == 1 ? 0 : i];
  for (int i = 0; i < nsp; i++) {
    int64_t v = out[off + i];
    if (v < lo || v > NN_MAX) {
      char vals[96] = "";
      for (int j = 0; j < nsp; j++)
        snprintf(vals + strlen(vals), sizeof vals - strlen(vals), "%s%lld", j ? ", " : "", (long long)out[off + j]);
      return mg_seterror(MG_EARG, "%s: %s must be %s %lld, got (%s)", NAME(c), arg, v < lo ? "at least" : "at most",
                         (long long)(v < lo ? lo : NN_MAX), vals);
    }
  }
  return MG_OK;
}

/* The padding mode in slot k and, for "explicit", the {before, after} pairs
 * of slot ke into pb/pa (3-d aligned; zero elsewhere). */
static mg_status nn_padding(const mg_call *c, int k, int ke, int nsp, int *pad, int64_t pb[3], int64_t pa[3]) {
  *pad = (int)A_I(c, k);
  for (int i = 0; i < 3; i++) pb[i] = pa[i] = 0;
  if (*pad != MG_PAD_VALID && *pad != MG_PAD_SAME && *pad != MG_PAD_EXPLICIT)
    return mg_seterror(MG_EARG, "%s: padding must be \"valid\", \"same\" or \"explicit\"", NAME(c));
  int n = A_N(c, ke);
  if (*pad != MG_PAD_EXPLICIT) {
    if (n == 0) return MG_OK;
    return mg_seterror(MG_EARG, "%s: explicit_padding is given but padding is \"%s\" (give padding as a list of "
                       "{before, after} pairs instead)", NAME(c), *pad == MG_PAD_SAME ? "same" : "valid");
  }
  if (n != 2 * nsp)
    return mg_seterror(MG_EARG, "%s: padding needs one {before, after} pair per spatial axis (%s): %d values, got %d",
                       NAME(c), nn_axes_list[nsp - 1], 2 * nsp, n);
  for (int i = 0; i < nsp; i++) {
    int64_t b = A_LIST(c, ke)[2 * i], a = A_LIST(c, ke)[2 * i + 1];
    if (b < 0 || a < 0 || b > NN_MAX || a > NN_MAX)
      return mg_seterror(MG_EARG, "%s: padding of the %s axis must be two sizes in [0, %lld], got {%lld, %lld}",
                         NAME(c), nn_axis3[3 - nsp + i], NN_MAX, (long long)b, (long long)a);
    pb[3 - nsp + i] = b;
    pa[3 - nsp + i] = a;
  }
  return MG_OK;
}

/* Output length and leading padding of one spatial axis (TF's rules);
 * keff is the dilated window. Errors when a window does not fit. */
static mg_status nn_axis(const mg_call *c, const char *what, const char *axis, int64_t in, int64_t keff,
                         int64_t s, int pad, int64_t pb, int64_t pa, int dilated, int64_t *out, int64_t *lead) {
  if (pad == MG_PAD_SAME) {
    *out = in == 0 ? 0 : (in - 1) / s + 1;
    int64_t total = (*out - 1) * s + keff - in;
    *lead = total > 0 ? total / 2 : 0;
    return MG_OK;
  }
  *lead = pb;
  if (pad == MG_PAD_EXPLICIT) {
    if (in + pb + pa < keff)
      return mg_seterror(MG_ESHAPE, "%s: %s has %s %lld, padded to %lld, smaller than the %swindow's %lld", NAME(c),
                         what, axis, (long long)in, (long long)(in + pb + pa), dilated ? "(dilated) " : "",
                         (long long)keff);
    *out = (in + pb + pa - keff) / s + 1;
    return MG_OK;
  }
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

/* The 3-d (depth, height, width) view of nsp spatial sizes starting at s. */
static void nn_spatial3(const int64_t *s, int nsp, int64_t out[3]) {
  for (int i = 0; i < 3; i++) out[i] = i < 3 - nsp ? 1 : s[i - (3 - nsp)];
}

/* Every axis's output length and leading padding (3-d aligned). */
static mg_status nn_axes(const mg_call *c, const char *what, int nsp, const int64_t in[3], const int64_t k[3],
                         const int64_t s[3], const int64_t d[3], int pad, const int64_t pb[3], const int64_t pa[3],
                         int64_t out[3], int64_t lead[3]) {
  for (int i = 0; i < 3; i++) {
    out[i] = in[i];
    lead[i] = 0;
  }
  for (int i = 3 - nsp; i < 3; i++) {
    int64_t keff = (k[i] - 1) * d[i] + 1; /* < 2^62: both factors < 2^31 */
    if (keff > NN_MAX)
      return mg_seterror(MG_EARG, "%s: the dilated window's %s %lld is too large", NAME(c), nn_axis3[i], (long long)keff);
    mg_status e = nn_axis(c, what, nn_axis3[i], in[i], keff, s[i], pad, pb[i], pa[i], d[i] > 1, &out[i], &lead[i]);
    if (e) return e;
  }
  return MG_OK;
}

mg_status mg_conv_geom_init(const mg_call *c, const int64_t *xs, const int64_t *ws, const char *what,
                            mg_conv_slots k, mg_conv_geom *g) {
  static const int64_t one[3] = {1, 1, 1};
  char sx[MG_SHAPE_BUF], sw[MG_SHAPE_BUF];
  int nsp = mg_nn_spatial(c->op), r = nsp + 2;
  int64_t st[3], dil[3], pb[3], pa[3], in[3], kk[3], out[3], lead[3];
  int pad;
  mg_status e = nn_sizes(c, what, xs, r);
  if (!e) e = nn_sizes(c, "the filter", ws, r);
  if (!e) e = nn_spatial_attr(c, k.strides, nsp, one, 1, st);
  if (!e) e = nn_spatial_attr(c, k.dilation, nsp, one, 1, dil);
  if (!e) e = nn_padding(c, k.padding, k.expl, nsp, &pad, pb, pa);
  if (e) return e;
  g->nsp = nsp;
  g->groups = k.groups >= 0 ? A_I(c, k.groups) : 1;
  if (g->groups < 1 || g->groups > NN_MAX)
    return mg_seterror(MG_EARG, "%s: groups must be at least 1, got %lld", NAME(c), (long long)g->groups);
  nn_spatial3(xs + 1, nsp, in);
  nn_spatial3(ws, nsp, kk);
  g->n = xs[0], g->ci = xs[r - 1], g->co = ws[r - 1];
  g->id = in[0], g->ih = in[1], g->iw = in[2];
  g->kd = kk[0], g->kh = kk[1], g->kw = kk[2];
  g->sd = st[0], g->sh = st[1], g->sw = st[2], g->dd = dil[0], g->dh = dil[1], g->dw = dil[2];
  if (g->ci % g->groups || g->co % g->groups || ws[r - 2] * g->groups != g->ci)
    return mg_seterror(MG_ESHAPE,
                       "%s: filter %s does not fit %s %s with groups=%lld (the filter must be %s, both channel "
                       "counts divisible by groups)",
                       NAME(c), mg_shape_str(r, ws, sw, sizeof sw), what, mg_shape_str(r, xs, sx, sizeof sx),
                       (long long)g->groups, nn_w_layout[nsp - 1]);
  if (g->kd == 0 || g->kh == 0 || g->kw == 0)
    return mg_seterror(MG_ESHAPE, "%s: filter %s has an empty window", NAME(c), mg_shape_str(r, ws, sw, sizeof sw));
  if ((e = nn_axes(c, what, nsp, in, kk, st, dil, pad, pb, pa, out, lead))) return e;
  g->od = out[0], g->oh = out[1], g->ow = out[2], g->pf = lead[0], g->pt = lead[1], g->pl = lead[2];
  return MG_OK;
}

/* The convolution's output shape (nsp + 2 values); returns its rank. */
static int nn_conv_out(const mg_conv_geom *g, int64_t *s) {
  int64_t o3[3] = {g->od, g->oh, g->ow};
  s[0] = g->n;
  for (int i = 0; i < g->nsp; i++) s[1 + i] = o3[3 - g->nsp + i];
  s[g->nsp + 1] = g->co;
  return g->nsp + 2;
}

/* ---- convolutions ------------------------------------------------------------ */

static const mg_conv_slots conv_slots = {0, 1, 2, 3, 4};       /* conv1d/2d/3d */
static const mg_conv_slots conv_grad_slots = {1, 2, 3, 4, 5};  /* the two gradients */

mg_status infer_conv(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *w = c->in[1];
  int nsp = mg_nn_spatial(c->op);
  int64_t shape[5];
  mg_conv_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, nsp + 2, nn_x_layout[nsp - 1]);
  if (!st) st = nn_rank(c, "w", w, nsp + 2, nn_w_layout[nsp - 1]);
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_conv_geom_init(c, x->shape, w->shape, "x", conv_slots, &g);
  if (st) return st;
  nn_out(out, dt, nn_conv_out(&g, shape), shape);
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* A required shape attribute of r values in slot k. */
static mg_status nn_shape_attr(const mg_call *c, int k, int r, const char *layout) {
  if (A_N(c, k) == r) return MG_OK;
  if (!A_SET(c, k)) return mg_seterror(MG_EARG, "%s: the '%s' argument is required", NAME(c), c->info->attrs[k].name);
  return mg_seterror(MG_EARG, "%s: %s must have %d values %s, got %d", NAME(c), c->info->attrs[k].name, r, layout,
                     A_N(c, k));
}

/* dy must have the shape of the convolution's output. */
static mg_status nn_check_dy(const mg_call *c, const mg_tensor *dy, const mg_conv_geom *g, const char *dyname) {
  int64_t want[5];
  int r = nn_conv_out(g, want);
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (dy->ndim == r && memcmp(dy->shape, want, (size_t)r * sizeof(int64_t)) == 0) return MG_OK;
  return mg_seterror(MG_ESHAPE, "%s: %s has shape %s but the convolution's output has shape %s", NAME(c), dyname,
                     mg_shape_str(dy->ndim, dy->shape, sa, sizeof sa), mg_shape_str(r, want, sb, sizeof sb));
}

mg_status infer_conv_backprop_input(const mg_call *c, mg_meta *out) {
  const mg_tensor *dy = c->in[0], *w = c->in[1];
  int nsp = mg_nn_spatial(c->op);
  mg_conv_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "w", w, nsp + 2, nn_w_layout[nsp - 1]);
  if (!st) st = nn_shape_attr(c, 0, nsp + 2, nn_x_layout[nsp - 1]);
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_conv_geom_init(c, A_LIST(c, 0), w->shape, "input_shape", conv_grad_slots, &g);
  if (!st) st = nn_check_dy(c, dy, &g, "dy");
  if (st) return st;
  nn_out(out, dt, nsp + 2, A_LIST(c, 0));
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

mg_status infer_conv_backprop_filter(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *dy = c->in[1];
  int nsp = mg_nn_spatial(c->op);
  mg_conv_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, nsp + 2, nn_x_layout[nsp - 1]);
  if (!st) st = nn_shape_attr(c, 0, nsp + 2, nn_w_layout[nsp - 1]);
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_conv_geom_init(c, x->shape, A_LIST(c, 0), "x", conv_grad_slots, &g);
  if (!st) st = nn_check_dy(c, dy, &g, "dy");
  if (st) return st;
  nn_out(out, dt, nsp + 2, A_LIST(c, 0));
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* conv*_transpose's schema: strides 0, padding 1, output_padding 2,
 * dilation 3, explicit_padding 4. */
static const mg_conv_slots transpose_slots = {0, 1, 3, -1, 4};

/* Keras's deconv_output_length per axis; with explicit {before, after}
 * padding (in - 1) * stride + dilated window - before - after +
 * output_padding (PyTorch's ConvTranspose with asymmetric padding). */
mg_status mg_conv_transpose_size(const mg_call *c, const mg_tensor *x, const mg_tensor *w, int64_t out[3]) {
  static const int64_t one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
  int nsp = mg_nn_spatial(c->op);
  int64_t st[3], dil[3], op[3], pb[3], pa[3], in[3], kk[3];
  int pad;
  mg_status e = nn_spatial_attr(c, 0, nsp, one, 1, st);
  if (!e) e = nn_spatial_attr(c, 3, nsp, one, 1, dil);
  if (!e) e = nn_spatial_attr(c, 2, nsp, zero, 0, op);
  if (!e) e = nn_padding(c, 1, 4, nsp, &pad, pb, pa);
  if (!e) e = nn_sizes(c, "x", x->shape, nsp + 2);
  if (!e) e = nn_sizes(c, "the filter", w->shape, nsp + 2);
  if (e) return e;
  nn_spatial3(x->shape + 1, nsp, in);
  nn_spatial3(w->shape, nsp, kk);
  for (int i = 0; i < 3; i++) out[i] = 1;
  for (int i = 3 - nsp; i < 3; i++) {
    int64_t keff = (kk[i] - 1) * dil[i] + 1;
    if (kk[i] == 0) return mg_seterror(MG_ESHAPE, "%s: the filter has an empty window", NAME(c));
    if (keff > NN_MAX) return mg_seterror(MG_EARG, "%s: the dilated window is too large", NAME(c));
    if (A_N(c, 2) && op[i] >= st[i]) {
      char so[96] = "", ss[96] = "";
      for (int j = 3 - nsp; j < 3; j++) {
        snprintf(so + strlen(so), sizeof so - strlen(so), "%s%lld", j > 3 - nsp ? ", " : "", (long long)op[j]);
        snprintf(ss + strlen(ss), sizeof ss - strlen(ss), "%s%lld", j > 3 - nsp ? ", " : "", (long long)st[j]);
      }
      return mg_seterror(MG_EARG, "%s: output_padding (%s) must be smaller than strides (%s)", NAME(c), so, ss);
    }
    if (pad == MG_PAD_EXPLICIT)
      out[i] = (in[i] - 1) * st[i] + keff - pb[i] - pa[i] + op[i];
    else if (!A_N(c, 2))
      out[i] = pad == MG_PAD_SAME ? in[i] * st[i] : in[i] * st[i] + (keff > st[i] ? keff - st[i] : 0);
    else
      out[i] = (in[i] - 1) * st[i] + keff - (pad == MG_PAD_SAME ? 2 * (keff / 2) : 0) + op[i];
    if (out[i] < 0 || out[i] > NN_MAX)
      return mg_seterror(MG_ESHAPE, "%s: the output would have %s %lld", NAME(c), nn_axis3[i], (long long)out[i]);
  }
  return MG_OK;
}

mg_status infer_conv_transpose(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *w = c->in[1];
  int nsp = mg_nn_spatial(c->op), r = nsp + 2;
  char sx[MG_SHAPE_BUF], sw[MG_SHAPE_BUF], so[MG_SHAPE_BUF];
  mg_dtype dt;
  int64_t sp[3], shape[5], back[5];
  mg_conv_geom g;
  mg_status st = nn_rank(c, "x", x, r, nn_x_layout[nsp - 1]);
  if (!st) st = nn_rank(c, "w", w, r, nn_wt_layout[nsp - 1]);
  if (!st) st = nn_float(c, 2, &dt);
  if (st) return st;
  if (w->shape[r - 1] != x->shape[r - 1])
    return mg_seterror(MG_ESHAPE, "%s: filter %s does not fit x %s (the filter must be %s with in_channels = x's "
                       "channels)", NAME(c), mg_shape_str(r, w->shape, sw, sizeof sw),
                       mg_shape_str(r, x->shape, sx, sizeof sx), nn_wt_layout[nsp - 1]);
  if ((st = mg_conv_transpose_size(c, x, w, sp))) return st;
  shape[0] = x->shape[0];
  for (int i = 0; i < nsp; i++) shape[1 + i] = sp[3 - nsp + i];
  shape[r - 1] = w->shape[r - 2];
  if ((st = mg_conv_geom_init(c, shape, w->shape, "the output", transpose_slots, &g))) return st;
  nn_conv_out(&g, back);
  for (int i = 1; i <= nsp; i++)
    if (back[i] != x->shape[i])
      return mg_seterror(MG_ESHAPE, "%s: an output of shape %s does not convolve back to x %s", NAME(c),
                         mg_shape_str(r, shape, so, sizeof so), mg_shape_str(r, x->shape, sx, sizeof sx));
  nn_out(out, dt, r, shape);
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* ---- pooling ------------------------------------------------------------------ */

mg_status mg_pool_geom_init(const mg_call *c, const int64_t *xs, int k, mg_pool_geom *g) {
  static const int64_t two[3] = {2, 2, 2}, one[3] = {1, 1, 1};
  int nsp = mg_nn_spatial(c->op);
  int64_t ks[3], st[3], dil[3], pb[3], pa[3], in[3], out[3], lead[3];
  int pad;
  mg_status e = nn_sizes(c, "x", xs, nsp + 2);
  if (!e) e = nn_spatial_attr(c, k, nsp, two, 1, ks);
  if (!e) e = nn_spatial_attr(c, k + 1, nsp, ks, 1, st);
  if (!e) e = nn_spatial_attr(c, k + 3, nsp, one, 1, dil);
  if (!e) e = nn_padding(c, k + 2, k + 4, nsp, &pad, pb, pa);
  if (e) return e;
  nn_spatial3(xs + 1, nsp, in);
  g->nsp = nsp;
  g->n = xs[0], g->ch = xs[nsp + 1];
  g->id = in[0], g->ih = in[1], g->iw = in[2];
  g->kd = ks[0], g->kh = ks[1], g->kw = ks[2], g->sd = st[0], g->sh = st[1], g->sw = st[2];
  g->dd = dil[0], g->dh = dil[1], g->dw = dil[2];
  g->incl = c->info->nattrs > k + 5 ? (int)A_I(c, k + 5) : 0;
  if ((e = nn_axes(c, "x", nsp, in, ks, st, dil, pad, pb, pa, out, lead))) return e;
  g->od = out[0], g->oh = out[1], g->ow = out[2], g->pf = lead[0], g->pt = lead[1], g->pl = lead[2];
  /* Every window must hold a position of x: one wholly in the padding (or
   * stepping over x with its dilation) has no maximum and no mean. */
  for (int i = 3 - nsp; i < 3; i++)
    for (int64_t o = 0; o < out[i]; o++) {
      int64_t s0 = o * st[i] - lead[i], k0 = s0 < 0 ? (-s0 + dil[i] - 1) / dil[i] : 0, last = in[i] - 1 - s0;
      int64_t k1 = last < 0 ? 0 : last / dil[i] + 1;
      if (k1 > ks[i]) k1 = ks[i];
      if (k1 <= k0)
        return mg_seterror(MG_ESHAPE, "%s: window %lld along the %s axis lies wholly in the padding (x has %s %lld, "
                           "padding {%lld, %lld}, window %lld, dilation %lld); use less padding", NAME(c),
                           (long long)o + 1, nn_axis3[i], nn_axis3[i], (long long)in[i], (long long)pb[i],
                           (long long)pa[i], (long long)ks[i], (long long)dil[i]);
    }
  return MG_OK;
}

/* The pooled output's shape (nsp + 2 values). */
static void nn_pool_out(const mg_pool_geom *g, int64_t *s) {
  int64_t o3[3] = {g->od, g->oh, g->ow};
  s[0] = g->n;
  for (int i = 0; i < g->nsp; i++) s[1 + i] = o3[3 - g->nsp + i];
  s[g->nsp + 1] = g->ch;
}

/* max pooling: float32, float64, int32, int64 and uint8 (TF's max_pool);
 * average pooling: floats only (TF's avg_pool: a mean of integers is no integer). */
static mg_status nn_pool_dtype(const mg_call *c, mg_dtype *dt) {
  *dt = (mg_dtype)c->in[0]->dtype;
  if (c->op == MG_OP_MAX_POOL1D || c->op == MG_OP_MAX_POOL2D || c->op == MG_OP_MAX_POOL3D) {
    if (*dt != MG_BOOL) return MG_OK;
    return mg_seterror(MG_EDTYPE, "%s: x is bool; it takes float32, float64, int32, int64 or uint8 "
                       "(cast a bool mask to uint8 first)", NAME(c));
  }
  if (mg_dtype_is_float(*dt)) return MG_OK;
  return mg_seterror(MG_EDTYPE, "%s: needs floating-point inputs (float32 or float64), got %s; average pooling "
                     "is float only, as in TF (cast x to float32 first)", NAME(c), mg_dtype_name(*dt));
}

mg_status infer_pool(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int nsp = mg_nn_spatial(c->op);
  int64_t shape[5];
  mg_pool_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, nsp + 2, nn_x_layout[nsp - 1]);
  if (!st) st = nn_pool_dtype(c, &dt);
  if (!st) st = mg_pool_geom_init(c, x->shape, 0, &g);
  if (st) return st;
  nn_pool_out(&g, shape);
  nn_out(out, dt, nsp + 2, shape);
  return MG_OK;
}

/* A pooling gradient input: `t` must have shape `want` (r values). */
static mg_status nn_check_shape(const mg_call *c, const char *arg, const mg_tensor *t, const int64_t *want, int r,
                                const char *what) {
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (t->ndim == r && memcmp(t->shape, want, (size_t)r * sizeof(int64_t)) == 0) return MG_OK;
  return mg_seterror(MG_ESHAPE, "%s: %s has shape %s but %s has shape %s", NAME(c), arg,
                     mg_shape_str(t->ndim, t->shape, sa, sizeof sa), what, mg_shape_str(r, want, sb, sizeof sb));
}

/* max_pool*_grad(x, dy): dy is shaped like the pooled output; the result like x. */
mg_status infer_max_pool_grad(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int nsp = mg_nn_spatial(c->op);
  int64_t shape[5];
  mg_pool_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, nsp + 2, nn_x_layout[nsp - 1]);
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_pool_geom_init(c, x->shape, 0, &g);
  if (!st) nn_pool_out(&g, shape);
  if (!st) st = nn_check_shape(c, "dy", c->in[1], shape, nsp + 2, "the pooled output");
  if (st) return st;
  nn_out(out, dt, nsp + 2, x->shape);
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;
}

/* max_pool*_grad_grad(x, gx): gx is shaped like x; the result like the pooled output. */
mg_status infer_max_pool_grad_grad(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int nsp = mg_nn_spatial(c->op);
  int64_t shape[5];
  mg_pool_geom g;
  mg_dtype dt;
  mg_status st = nn_rank(c, "x", x, nsp + 2, nn_x_layout[nsp - 1]);
  if (!st) st = nn_float(c, 2, &dt);
  if (!st) st = mg_pool_geom_init(c, x->shape, 0, &g);
  if (!st) st = nn_check_shape(c, "gx", c->in[1], x->shape, nsp + 2, "x");
  if (st) return st;
  nn_pool_out(&g, shape);
  nn_out(out, dt, nsp + 2, shape);
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;
}

/* avg_pool*_grad(dy, input_shape, ...): the result has input_shape. */
mg_status infer_avg_pool_grad(const mg_call *c, mg_meta *out) {
  int nsp = mg_nn_spatial(c->op);
  int64_t shape[5];
  mg_pool_geom g;
  mg_dtype dt;
  mg_status st = nn_shape_attr(c, 0, nsp + 2, nn_x_layout[nsp - 1]);
  if (!st) st = nn_float(c, 1, &dt);
  if (!st) st = mg_pool_geom_init(c, A_LIST(c, 0), 1, &g);
  if (!st) nn_pool_out(&g, shape);
  if (!st) st = nn_check_shape(c, "dy", c->in[0], shape, nsp + 2, "the pooled output");
  if (st) return st;
  nn_out(out, dt, nsp + 2, A_LIST(c, 0));
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
