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
 */
#include "internal.h"

static const struct {
  const char *name;
  size_t size;
} dtypes[MG_NDTYPES] = {
    [MG_FLOAT32] = {"float32", 4}, [MG_FLOAT64] = {"float64", 8}, [MG_INT32] = {"int32", 4},
    [MG_INT64] = {"int64", 8},     [MG_UINT8] = {"uint8", 1},     [MG_BOOL] = {"bool", 1},
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
int mg_dtype_is_float(mg_dtype dt) { return dt == MG_FLOAT32 || dt == MG_FLOAT64; }
int mg_dtype_is_int(mg_dtype dt) { return dt == MG_INT32 || dt == MG_INT64 || dt == MG_UINT8; }

static int category(mg_dtype dt) { return dt == MG_BOOL ? 0 : mg_dtype_is_int(dt) ? 1 : 2; }

mg_dtype mg_promote(mg_dtype a, mg_dtype b) {
  if (a == b) return a;
  int ca = category(a), cb = category(b);
  if (ca != cb) return ca > cb ? a : b;
  if (ca == 2) return MG_FLOAT64;               /* float32 with float64 */
  if (a == MG_INT64 || b == MG_INT64) return MG_INT64;
  return MG_INT32;                              /* int32 with uint8 */
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
