/*
 * dtype.c — element types and NumPy/PyTorch type promotion.
 *
 * Promotion works on categories bool < integer < float. Two strong dtypes of
 * the same category promote to the wider one (uint8 with a signed int goes
 * to the signed one, at least int32); across categories the higher category
 * wins. A weak scalar (a plain Lua number) only changes the result when its
 * category is higher than the tensor's, and then gives that category's default
 * dtype: int64 for integers, float32 for floats (int_tensor * 0.5 is float32,
 * float32_tensor * 2 stays float32).
 *
 * A number the user gives becomes an element of a typed tensor in many places
 * (creation, a weak scalar cast to the tensor's dtype, assignment, fill
 * values): mg_check_number is the one test all of them use, so a value an
 * integer dtype cannot hold is an error instead of wrapping (uint8 250 + 300
 * is not 38).
 *
 * float16, bfloat16, int8 and int16 are storage dtypes: mg_apply computes
 * an op on them in float32/int32 unless the op's kernel handles them, and
 * rounds the result once on store (apply.c).
 */
#include "internal.h"
#include "half.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const struct {
  const char *name;
  size_t size;
} dtypes[MG_NDTYPES] = {
    [MG_FLOAT32] = {"float32", 4}, [MG_FLOAT64] = {"float64", 8}, [MG_INT32] = {"int32", 4},
    [MG_INT64] = {"int64", 8},     [MG_UINT8] = {"uint8", 1},     [MG_BOOL] = {"bool", 1},
    [MG_FLOAT16] = {"float16", 2}, [MG_BFLOAT16] = {"bfloat16", 2}, [MG_INT8] = {"int8", 1},
    [MG_INT16] = {"int16", 2},
};

const char *mg_dtype_name(mg_dtype dt) {
  return (unsigned)dt < MG_NDTYPES ? dtypes[dt].name : "?";
}

int mg_dtype_from_name(const char *name, mg_dtype *out) {
  for (int i = 0; i < MG_NDTYPES; i++)
    if (strcmp(name, dtypes[i].name) == 0) {
      *out = (mg_dtype)i;
      return 1;
    }
  return 0;
}

size_t mg_dtype_size(mg_dtype dt) { return (unsigned)dt < MG_NDTYPES ? dtypes[dt].size : 0; }
int mg_dtype_is_float(mg_dtype dt) {
  return dt == MG_FLOAT32 || dt == MG_FLOAT64 || dt == MG_FLOAT16 || dt == MG_BFLOAT16;
}
int mg_dtype_is_int(mg_dtype dt) {
  return dt == MG_INT32 || dt == MG_INT64 || dt == MG_UINT8 || dt == MG_INT8 || dt == MG_INT16;
}
int mg_dtype_is_storage(mg_dtype dt) {
  return dt == MG_FLOAT16 || dt == MG_BFLOAT16 || dt == MG_INT8 || dt == MG_INT16;
}
mg_dtype mg_dtype_compute(mg_dtype dt) {
  return dt == MG_FLOAT16 || dt == MG_BFLOAT16 ? MG_FLOAT32 : dt == MG_INT8 || dt == MG_INT16 ? MG_INT32 : dt;
}

uint16_t mg_half_from_f64(mg_dtype dt, double v) { return dt == MG_BFLOAT16 ? mg_f64_to_bf16(v) : mg_f64_to_f16(v); }
double mg_half_to_f64(mg_dtype dt, uint16_t h) { return dt == MG_BFLOAT16 ? mg_bf16_to_f32(h) : mg_f16_to_f32(h); }

static int category(mg_dtype dt) { return dt == MG_BOOL ? 0 : mg_dtype_is_int(dt) ? 1 : 2; }

/* Width ranks inside a category: float16 and bfloat16 share one (neither
 * holds the other: their join is float32); uint8 ranks with the signed
 * ints by what holds it (int16). */
static int rank(mg_dtype dt) {
  switch (dt) {
  case MG_INT8: case MG_FLOAT16: case MG_BFLOAT16: return 1;
  case MG_INT16: case MG_UINT8: return 2;
  case MG_INT32: case MG_FLOAT32: return 3;
  default: return 4;  /* int64, float64 */
  }
}

mg_dtype mg_promote(mg_dtype a, mg_dtype b) {
  if (a == b) return a;
  int ca = category(a), cb = category(b);
  if (ca != cb) return ca > cb ? a : b;
  int ra = rank(a), rb = rank(b);
  if (ca == 2) return ra == rb ? MG_FLOAT32 : ra > rb ? a : b;  /* float16 with bfloat16: float32 */
  if (a == MG_UINT8 || b == MG_UINT8) {  /* with a signed int: one that holds 0..255 */
    mg_dtype s = a == MG_UINT8 ? b : a;
    return rank(s) <= 2 ? MG_INT16 : s;
  }
  return ra > rb ? a : b;
}

mg_dtype mg_promote_inputs(mg_tensor *const *in, int n) {
  int have_strong = 0, weak_cat = -1;
  mg_dtype strong = MG_BOOL;
  for (int i = 0; i < n; i++) {
    mg_dtype dt = (mg_dtype)in[i]->dtype;
    if (in[i]->flags & MG_TF_WEAK) {
      if (category(dt) > weak_cat) weak_cat = category(dt);
    } else {
      strong = have_strong ? mg_promote(strong, dt) : dt;
      have_strong = 1;
    }
  }
  if (!have_strong) {  /* only scalars: their natural dtypes */
    return weak_cat == 2 ? MG_FLOAT32 : weak_cat == 1 ? MG_INT64 : MG_BOOL;
  }
  if (weak_cat > category(strong)) return weak_cat == 2 ? MG_FLOAT32 : MG_INT64;
  return strong;
}

/* The range of an integer dtype. */
static void int_range(mg_dtype dt, int64_t *lo, int64_t *hi) {
  switch (dt) {
  case MG_INT8: *lo = INT8_MIN, *hi = INT8_MAX; break;
  case MG_INT16: *lo = INT16_MIN, *hi = INT16_MAX; break;
  case MG_INT32: *lo = INT32_MIN, *hi = INT32_MAX; break;
  case MG_INT64: *lo = INT64_MIN, *hi = INT64_MAX; break;
  default: *lo = 0, *hi = 255; break;
  }
}

/* The number as the user wrote it: integral floats without an exponent, so
 * 2^40 reads the same from Lua 5.4 (a float) and LuaJIT (an integer). */
static void number_str(int is_int, int64_t i, double f, char *buf, size_t cap) {
  if (is_int) snprintf(buf, cap, "%lld", (long long)i);
  else if (isnan(f)) snprintf(buf, cap, "nan");
  else if (isinf(f)) snprintf(buf, cap, "%sinf", f < 0 ? "-" : "");
  else if (f == floor(f) && fabs(f) < 1e18) snprintf(buf, cap, "%.0f", f);
  else
    for (int p = 15; p <= 17; p++) {  /* the shortest that reads back: -3.7, not -3.7000000000000002 */
      snprintf(buf, cap, "%.*g", p, f);
      if (strtod(buf, NULL) == f) break;
    }
}

mg_status mg_check_number(const char *fname, const char *arg, mg_dtype dt, int is_int, int64_t i, double f) {
  if (!mg_dtype_is_int(dt)) return MG_OK;
  int64_t lo, hi;
  int_range(dt, &lo, &hi);
  int ok = is_int ? i >= lo && i <= hi
                  /* the float bounds are exact: powers of two or their neighbours */
                  : f == floor(f) && f >= (double)lo && (dt == MG_INT64 ? f < 9223372036854775808.0 : f <= (double)hi);
  if (ok) return MG_OK;
  char v[64];
  number_str(is_int, i, f, v, sizeof v);
  const char *what = arg ? arg : "the Lua number";
  if (!is_int && (isnan(f) || isinf(f)))
    return mg_seterror(MG_EARG, "%s: cannot convert %s %s to %s (an integer dtype has no NaN or inf)", fname, what, v,
                       mg_dtype_name(dt));
  if (!is_int && f != floor(f))
    return mg_seterror(MG_EARG, "%s: %s %s has a fraction; an %s element must be an integer (round it first, or use "
                       "a float dtype)", fname, what, v, mg_dtype_name(dt));
  return mg_seterror(MG_EARG, "%s: %s %s is out of bounds for %s (%lld..%lld)", fname, what, v, mg_dtype_name(dt),
                     (long long)lo, (long long)hi);
}

mg_status mg_check_weak(const char *fname, const mg_tensor *t, mg_dtype dt, int truncate) {
  if (!(t->flags & MG_TF_WEAK) || !mg_dtype_is_int(dt) || !t->storage) return MG_OK;
  if (mg_dtype_is_int((mg_dtype)t->dtype)) return mg_check_number(fname, NULL, dt, 1, mg_tensor_get_i64(t, 0), 0);
  double f = mg_tensor_get_f64(t, 0);
  return mg_check_number(fname, NULL, dt, 0, 0, truncate && isfinite(f) ? trunc(f) : f);
}
