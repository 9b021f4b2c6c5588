/*
 * optim.c — fused optimizer steps: sgd_update, adam_update, rmsprop_update,
 * adagrad_update. Each reads a parameter, its gradient and its slots once
 * and writes the new parameter and slots in the same pass, instead of the
 * five to ten elementwise passes (and a copy per assign) of the composed
 * formula; that is what keeps an Adam step over a 3136x1024 kernel cheap.
 *
 * The state inputs (parameter, slots) are Variables and are updated in place
 * (the ops carry MG_STATE, so graph passes keep them where they are and the
 * executor runs them through mg_apply). Where the op may write is decided by
 * mg_variable_update_target (variable.c): into the Variable's own buffer
 * when nobody else can see it, else into a fresh buffer installed after the
 * pass, so a tape snapshot or a view of the old value never changes. While
 * tracing, the state inputs must be the Variables themselves, so each call
 * gets READ nodes of its own (never a read that something later also uses).
 * The result is the number of elements updated (a 0-d int64), so the call
 * has a value like every op.
 *
 * Scalars (learning rate, Adam's alpha, the decoupled weight decay) are
 * one-element tensors of any number dtype, read once as doubles.
 */
#include "internal.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define NAME(c) ((c)->info->name)
#define OPT_MAX_STATE 4
#define OPT_BLOCK 4096  /* elements per work item */

/* Which inputs an op call has: state inputs first (parameter, slots), then g
 * and the scalars. */
typedef struct opt_layout {
  int nstate, nscalar;
  const char *names[OPT_MAX_STATE + 4];
} opt_layout;

static void layout_sgd(const mg_call *c, opt_layout *l) {
  static const char *plain[] = {"var", "g", "lr"}, *mom[] = {"var", "momentum", "g", "lr"};
  int m = A_F(c, 0) != 0;
  l->nstate = m ? 2 : 1;
  l->nscalar = 1;
  memcpy(l->names, m ? mom : plain, (size_t)(l->nstate + 2) * sizeof *l->names);
}

static void layout_adam(const mg_call *c, opt_layout *l) {
  static const char *plain[] = {"var", "m", "v", "g", "alpha", "decay"};
  static const char *ams[] = {"var", "m", "v", "vhat", "g", "alpha", "decay"};
  int a = (int)A_I(c, 3);
  l->nstate = a ? 4 : 3;
  l->nscalar = 2;
  memcpy(l->names, a ? ams : plain, (size_t)(l->nstate + 3) * sizeof *l->names);
}

static void layout_rmsprop(const mg_call *c, opt_layout *l) {
  int mom = A_F(c, 1) != 0, cen = (int)A_I(c, 3), k = 0;
  l->names[k++] = "var";
  l->names[k++] = "velocity";
  if (mom) l->names[k++] = "momentum";
  if (cen) l->names[k++] = "average_gradient";
  l->nstate = k;
  l->names[k++] = "g";
  l->names[k++] = "lr";
  l->nscalar = 1;
}

static void layout_adagrad(const mg_call *c, opt_layout *l) {
  static const char *names[] = {"var", "accumulator", "g", "lr"};
  (void)c;
  l->nstate = 2;
  l->nscalar = 1;
  memcpy(l->names, names, sizeof names);
}

static void layout_of(const mg_call *c, opt_layout *l) {
  switch (c->op) {
  case MG_OP_SGD_UPDATE: layout_sgd(c, l); break;
  case MG_OP_ADAM_UPDATE: layout_adam(c, l); break;
  case MG_OP_RMSPROP_UPDATE: layout_rmsprop(c, l); break;
  default: layout_adagrad(c, l); break;
  }
}

static mg_status check_layout_count(const mg_call *c, const opt_layout *l) {
  int want = l->nstate + 1 + l->nscalar;
  if (c->nin == want) return MG_OK;
  char list[200] = "";
  for (int k = 0; k < want; k++) {
    strncat(list, k ? ", " : "", sizeof list - strlen(list) - 1);
    strncat(list, l->names[k], sizeof list - strlen(list) - 1);
  }
  return mg_seterror(MG_EARG, "%s: takes %d inputs here ({%s}), got %d", NAME(c), want, list, c->nin);
}

/* A state input must be a Variable (while tracing, the Variable itself, so
 * it gets a READ of its own; a staged run passes that READ). */
static int state_ok(const mg_call *c, const mg_tensor *t) {
  if (t->flags & MG_TF_VARIABLE) return 1;
  return c->ctx && c->ctx->running && !c->ctx->ntraces && t->snapshot_of && !(t->flags & MG_TF_SYMBOLIC);
}

static mg_status check_state(const mg_call *c, const opt_layout *l) {
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  const mg_tensor *var = c->in[0];
  for (int k = 0; k <= l->nstate; k++) {  /* the state inputs and g */
    const mg_tensor *t = c->in[k];
    if (k < l->nstate && !state_ok(c, t))
      return mg_seterror(MG_EARG, "%s: input %d (%s) must be a Variable (it is updated in place), got a %s tensor",
                         NAME(c), k + 1, l->names[k], t->flags & MG_TF_SYMBOLIC ? "computed" : "plain");
    if (!mg_dtype_is_float((mg_dtype)t->dtype))
      return mg_seterror(MG_EDTYPE, "%s: input %d (%s) must be float32 or float64, got %s", NAME(c), k + 1,
                         l->names[k], mg_dtype_name((mg_dtype)t->dtype));
    if (t->dtype != var->dtype)
      return mg_seterror(MG_EDTYPE, "%s: input %d (%s) is %s but var is %s; cast it first", NAME(c), k + 1,
                         l->names[k], mg_dtype_name((mg_dtype)t->dtype), mg_dtype_name((mg_dtype)var->dtype));
    if (t->ndim != var->ndim || memcmp(t->shape, var->shape, (size_t)var->ndim * sizeof(int64_t)))
      return mg_seterror(MG_ESHAPE, "%s: input %d (%s) has shape %s but var has shape %s", NAME(c), k + 1,
                         l->names[k], mg_shape_str(t->ndim, t->shape, sa, sizeof sa),
                         mg_shape_str(var->ndim, var->shape, sb, sizeof sb));
    for (int j = 0; j < k && k < l->nstate; j++)
      if (mg_identity(c->in[j]) == mg_identity(c->in[k]))
        return mg_seterror(MG_EARG, "%s: inputs %d (%s) and %d (%s) are the same Variable", NAME(c), j + 1,
                           l->names[j], k + 1, l->names[k]);
  }
  return MG_OK;
}

static mg_status check_scalars(const mg_call *c, const opt_layout *l) {
  char sa[MG_SHAPE_BUF];
  for (int k = l->nstate + 1; k < c->nin; k++) {
    const mg_tensor *t = c->in[k];
    mg_dtype dt = (mg_dtype)t->dtype;
    if (dt == MG_BOOL || mg_tensor_numel(t) != 1)
      return mg_seterror(MG_EARG, "%s: input %d (%s) must be one number (a Lua number or a 1-element tensor), "
                         "got a %s tensor of shape %s", NAME(c), k + 1, l->names[k], mg_dtype_name(dt),
                         mg_shape_str(t->ndim, t->shape, sa, sizeof sa));
  }
  return MG_OK;
}

static mg_status check_attrs(const mg_call *c) {
  const char *bad = NULL;
  double v = 0;
  switch (c->op) {
  case MG_OP_SGD_UPDATE:
    if (!(A_F(c, 0) >= 0 && A_F(c, 0) <= 1)) bad = "momentum must be in [0, 1]", v = A_F(c, 0);
    break;
  case MG_OP_ADAM_UPDATE:
    if (!(A_F(c, 0) >= 0 && A_F(c, 0) < 1)) bad = "beta_1 must be in [0, 1)", v = A_F(c, 0);
    else if (!(A_F(c, 1) >= 0 && A_F(c, 1) < 1)) bad = "beta_2 must be in [0, 1)", v = A_F(c, 1);
    else if (!(A_F(c, 2) >= 0)) bad = "epsilon must be >= 0", v = A_F(c, 2);
    break;
  case MG_OP_RMSPROP_UPDATE:
    if (!(A_F(c, 0) >= 0 && A_F(c, 0) <= 1)) bad = "rho must be in [0, 1]", v = A_F(c, 0);
    else if (!(A_F(c, 1) >= 0)) bad = "momentum must be >= 0", v = A_F(c, 1);
    else if (!(A_F(c, 2) >= 0)) bad = "epsilon must be >= 0", v = A_F(c, 2);
    break;
  default:
    if (!(A_F(c, 0) >= 0)) bad = "epsilon must be >= 0", v = A_F(c, 0);
    break;
  }
  return bad ? mg_seterror(MG_EARG, "%s: %s, got %g", NAME(c), bad, v) : MG_OK;
}

/* The four ops share one infer: layout from the attributes, then checks. */
mg_status infer_optim(const mg_call *c, mg_meta *out) {
  opt_layout l;
  mg_status st = check_attrs(c);
  if (st) return st;
  layout_of(c, &l);
  if ((st = check_layout_count(c, &l)) || (st = check_state(c, &l)) || (st = check_scalars(c, &l))) return st;
  out->dtype = MG_INT64;
  out->ndim = 0;
  return MG_OK;
}

/* ---- the pass ------------------------------------------------------------------------ */

typedef struct opt_pass {
  int nstate;
  mg_tensor *var[OPT_MAX_STATE], *fresh[OPT_MAX_STATE], *tmp[OPT_MAX_STATE + 1];
  const char *src[OPT_MAX_STATE], *g;
  char *dst[OPT_MAX_STATE];
  double s[2];   /* the scalar inputs */
  int64_t n;
} opt_pass;

static void pass_free(opt_pass *p, int commit) {
  for (int k = 0; k < p->nstate; k++) {
    if (p->fresh[k] && commit) mg_variable_swap_in(p->var[k], p->fresh[k]);
    else mg_tensor_release(p->fresh[k]);
  }
  for (int k = 0; k <= p->nstate; k++) mg_tensor_release(p->tmp[k]);
}

/* A contiguous version of input t (t itself, or a copy kept in *tmp). */
static mg_status contiguous(mg_tensor *t, mg_tensor **tmp, const char **ptr) {
  if (!mg_tensor_is_contiguous(t)) {
    mg_tensor *u = mg_tensor_header((mg_dtype)t->dtype, t->ndim, t->shape);
    mg_status st = u ? mg_tensor_alloc_storage(u) : mg_seterror(MG_ENOMEM, "update: out of memory");
    if (!st) st = mg_copy_into(u, t);
    if (st) {
      mg_tensor_release(u);
      return st;
    }
    *tmp = t = u;
  }
  *ptr = mg_ptr(t);
  return MG_OK;
}

static mg_status pass_open(const mg_call *c, int nstate, opt_pass *p) {
  memset(p, 0, sizeof *p);
  p->nstate = nstate;
  p->n = mg_tensor_numel(c->in[0]);
  mg_status st = MG_OK;
  for (int k = 0; !st && k < nstate; k++) {
    mg_tensor *in = c->in[k];
    p->var[k] = mg_identity(in);
    if ((st = contiguous(in, &p->tmp[k], &p->src[k]))) break;
    if ((st = mg_variable_update_target(c->ctx, p->var[k], p->tmp[k] ? p->tmp[k] : in, &p->fresh[k]))) break;
    p->dst[k] = mg_ptr(p->fresh[k] ? p->fresh[k] : p->var[k]);
  }
  if (!st) st = contiguous(c->in[nstate], &p->tmp[nstate], &p->g);
  for (int k = nstate + 1; k < c->nin && k - nstate - 1 < 2; k++) p->s[k - nstate - 1] = mg_tensor_get_f64(c->in[k], 0);
  if (st) pass_free(p, 0);
  return st;
}

/* Runs the statement given (over i0..i1) over [0, n) in blocks, on threads for big tensors. */
#define OPT_BLOCKS(p, ...)                                                                   \
  do {                                                                                       \
    int64_t nb_ = ((p)->n + OPT_BLOCK - 1) / OPT_BLOCK;                                      \
    _Pragma("omp parallel for num_threads(mg_threads()) schedule(static) if ((p)->n >= MG_PAR_MIN)") \
    for (int64_t b_ = 0; b_ < nb_; b_++) {                                                   \
      int64_t i0 = b_ * OPT_BLOCK, i1 = i0 + OPT_BLOCK < (p)->n ? i0 + OPT_BLOCK : (p)->n;   \
      __VA_ARGS__;                                                                           \
    }                                                                                        \
  } while (0)

/* ---- sgd_update ---------------------------------------------------------------------- */

/* Keras 3: plain var -= lr*g; momentum m = mu*m - lr*g, var += m (Nesterov:
 * var += mu*m - lr*g with the new m). */
#define SGD_FN(NAME_, T, SQRT)                                                               \
  static void NAME_(opt_pass *p, T mu, int nesterov) {                                       \
    T lr = (T)p->s[0];                                                                       \
    const T *w = (const T *)p->src[0], *g = (const T *)p->g;                                 \
    T *wo = (T *)p->dst[0];                                                                  \
    if (p->nstate == 1) {                                                                    \
      OPT_BLOCKS(p, _Pragma("omp simd") for (int64_t i = i0; i < i1; i++) wo[i] = w[i] - g[i] * lr); \
      return;                                                                                \
    }                                                                                        \
    const T *m = (const T *)p->src[1];                                                       \
    T *mo = (T *)p->dst[1];                                                                  \
    OPT_BLOCKS(p, _Pragma("omp simd") for (int64_t i = i0; i < i1; i++) {                    \
      T gi = g[i], mn = m[i] * mu - gi * lr;                                                 \
      mo[i] = mn;                                                                            \
      wo[i] = w[i] + (nesterov ? mn * mu - gi * lr : mn);                                    \
    });                                                                                      \
  }
SGD_FN(sgd_f32, float, sqrtf)
SGD_FN(sgd_f64, double, sqrt)

mg_status k_sgd_update(const mg_call *c, mg_tensor *out) {
  opt_pass p;
  int nstate = A_F(c, 0) != 0 ? 2 : 1;
  mg_status st = pass_open(c, nstate, &p);
  if (st) return st;
  if (c->in[0]->dtype == MG_FLOAT32) sgd_f32(&p, (float)A_F(c, 0), (int)A_I(c, 1));
  else sgd_f64(&p, A_F(c, 0), (int)A_I(c, 1));
  pass_free(&p, 1);
  *(int64_t *)mg_ptr(out) = p.n;
  return MG_OK;
}

/* ---- adam_update --------------------------------------------------------------------- */

/* Keras: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2) (amsgrad: v = vhat =
 * max(vhat, v)); var = var - decay*var - alpha*m / (sqrt(v) + eps), decay
 * being lr*weight_decay (AdamW's decoupled decay, applied to the old var). */
#define ADAM_FN(NAME_, T, SQRT)                                                              \
  static void NAME_(opt_pass *p, double b1, double b2, double epsd) {                         \
    T alpha = (T)p->s[0], decay = (T)p->s[1], c1 = (T)(1 - b1), c2 = (T)(1 - b2), eps = (T)epsd; \
    const T *w = (const T *)p->src[0], *m = (const T *)p->src[1], *v = (const T *)p->src[2]; \
    const T *g = (const T *)p->g;                                                            \
    T *wo = (T *)p->dst[0], *mo = (T *)p->dst[1], *vo = (T *)p->dst[2];                      \
    if (p->nstate == 3) {                                                                    \
      OPT_BLOCKS(p, _Pragma("omp simd") for (int64_t i = i0; i < i1; i++) {                  \
        T gi = g[i], wi = w[i], mn = m[i] + (gi - m[i]) * c1, vn = v[i] + (gi * gi - v[i]) * c2; \
        mo[i] = mn;                                                                          \
        vo[i] = vn;                                                                          \
        wo[i] = (wi - wi * decay) - mn * alpha / (SQRT(vn) + eps);                           \
      });                                                                                    \
      return;                                                                                \
    }                                                                                        \
    const T *h = (const T *)p->src[3];                                                       \
    T *ho = (T *)p->dst[3];                                                                  \
    OPT_BLOCKS(p, _Pragma("omp simd") for (int64_t i = i0; i < i1; i++) {                    \
      T gi = g[i], wi = w[i], mn = m[i] + (gi - m[i]) * c1, vn = v[i] + (gi * gi - v[i]) * c2; \
      T hn = h[i] > vn ? h[i] : vn;                                                          \
      mo[i] = mn;                                                                            \
      vo[i] = vn;                                                                            \
      ho[i] = hn;                                                                            \
      wo[i] = (wi - wi * decay) - mn * alpha / (SQRT(hn) + eps);                             \
    });                                                                                      \
  }
ADAM_FN(adam_f32, float, sqrtf)
ADAM_FN(adam_f64, double, sqrt)

mg_status k_adam_update(const mg_call *c, mg_tensor *out) {
  opt_pass p;
  mg_status st = pass_open(c, A_I(c, 3) ? 4 : 3, &p);
  if (st) return st;
  if (c->in[0]->dtype == MG_FLOAT32) adam_f32(&p, A_F(c, 0), A_F(c, 1), A_F(c, 2));
  else adam_f64(&p, A_F(c, 0), A_F(c, 1), A_F(c, 2));
  pass_free(&p, 1);
  *(int64_t *)mg_ptr(out) = p.n;
  return MG_OK;
}

/* ---- rmsprop_update ------------------------------------------------------------------ */

/* Keras 3: vel = rho*vel + (1-rho)*g^2; centered: avg = rho*avg + (1-rho)*g
 * and the denominator loses avg^2; inc = lr*g / sqrt(denominator + eps);
 * momentum: mom = mu*mom + inc, var -= mom; else var -= inc. */
#define RMS_FN(NAME_, T, SQRT)                                                               \
  static void NAME_(opt_pass *p, double rhod, double mud, double epsd, int centered) {        \
    T lr = (T)p->s[0], rho = (T)rhod, mu = (T)mud, eps = (T)epsd, c1 = (T)(1 - rhod);        \
    int km = mud != 0 ? 2 : 0, ka = centered ? (km ? 3 : 2) : 0;                              \
    const T *w = (const T *)p->src[0], *vel = (const T *)p->src[1], *g = (const T *)p->g;    \
    const T *mm = km ? (const T *)p->src[km] : g, *aa = ka ? (const T *)p->src[ka] : g;      \
    T *wo = (T *)p->dst[0], *velo = (T *)p->dst[1];                                          \
    T *mmo = km ? (T *)p->dst[km] : NULL, *aao = ka ? (T *)p->dst[ka] : NULL;                \
    OPT_BLOCKS(p, _Pragma("omp simd") for (int64_t i = i0; i < i1; i++) {                    \
      T gi = g[i], vn = vel[i] * rho + gi * gi * c1, den = vn;                               \
      velo[i] = vn;                                                                          \
      if (ka) {                                                                              \
        T an = aa[i] * rho + gi * c1;                                                        \
        aao[i] = an;                                                                         \
        den = vn - an * an;                                                                  \
      }                                                                                      \
      T inc = gi * lr / SQRT(den + eps);                                                     \
      if (km) {                                                                              \
        T mn = mm[i] * mu + inc;                                                             \
        mmo[i] = mn;                                                                         \
        inc = mn;                                                                            \
      }                                                                                      \
      wo[i] = w[i] - inc;                                                                    \
    });                                                                                      \
  }
RMS_FN(rms_f32, float, sqrtf)
RMS_FN(rms_f64, double, sqrt)

mg_status k_rmsprop_update(const mg_call *c, mg_tensor *out) {
  opt_pass p;
  int nstate = 2 + (A_F(c, 1) != 0) + (A_I(c, 3) != 0);
  mg_status st = pass_open(c, nstate, &p);
  if (st) return st;
  if (c->in[0]->dtype == MG_FLOAT32) rms_f32(&p, A_F(c, 0), A_F(c, 1), A_F(c, 2), (int)A_I(c, 3));
  else rms_f64(&p, A_F(c, 0), A_F(c, 1), A_F(c, 2), (int)A_I(c, 3));
  pass_free(&p, 1);
  *(int64_t *)mg_ptr(out) = p.n;
  return MG_OK;
}

/* ---- adagrad_update ------------------------------------------------------------------ */

/* Keras 3: acc += g^2; var -= lr*g / sqrt(acc + eps). */
#define ADAGRAD_FN(NAME_, T, SQRT)                                                           \
  static void NAME_(opt_pass *p, T eps) {                                                    \
    T lr = (T)p->s[0];                                                                       \
    const T *w = (const T *)p->src[0], *a = (const T *)p->src[1], *g = (const T *)p->g;      \
    T *wo = (T *)p->dst[0], *ao = (T *)p->dst[1];                                            \
    OPT_BLOCKS(p, _Pragma("omp simd") for (int64_t i = i0; i < i1; i++) {                    \
      T gi = g[i], an = a[i] + gi * gi;                                                      \
      ao[i] = an;                                                                            \
      wo[i] = w[i] - gi * lr / SQRT(an + eps);                                               \
    });                                                                                      \
  }
ADAGRAD_FN(adagrad_f32, float, sqrtf)
ADAGRAD_FN(adagrad_f64, double, sqrt)

mg_status k_adagrad_update(const mg_call *c, mg_tensor *out) {
  opt_pass p;
  mg_status st = pass_open(c, 2, &p);
  if (st) return st;
  if (c->in[0]->dtype == MG_FLOAT32) adagrad_f32(&p, (float)A_F(c, 0));
  else adagrad_f64(&p, A_F(c, 0));
  pass_free(&p, 1);
  *(int64_t *)mg_ptr(out) = p.n;
  return MG_OK;
}
