/*
 * create.c — kernels that build tensors from attributes alone: full,
 * arange, linspace and eye.
 *
 * Values are computed in double and stored through one conversion per
 * dtype, stamped as typed loops (no per-element dispatch). infer_shape.c has
 * already refused values an integer dtype cannot hold, so the conversion
 * only saturates as a guard against undefined behaviour. linspace fills its
 * two halves from opposite ends (start + i*step, then stop - (n-1-i)*step)
 * so both endpoints are exact, as PyTorch does. Big fills run on all threads.
 */
#include "internal.h"

/* double -> integer without undefined behaviour: NaN gives 0, ends saturate. */
static int64_t create_clamp(double v, double lo, double hi) {
  if (v != v) return 0;
  if (v <= lo) return (int64_t)lo;
  if (v >= hi) return hi >= 9.2e18 ? INT64_MAX : (int64_t)hi;
  return (int64_t)v;
}

#define CONV_F32(v) ((float)(v))
#define CONV_F64(v) (v)
#define CONV_I32(v) ((int32_t)create_clamp(v, -2147483648.0, 2147483647.0))
#define CONV_I64(v) (create_clamp(v, -9223372036854775808.0, 9223372036854775807.0))
#define CONV_U8(v) ((uint8_t)create_clamp(v, 0, 255))
#define CONV_BOOL(v) ((uint8_t)((v) != 0))

/* Stamps `BODY` (which writes o[i] from the double expression VAL(i)) for
 * every dtype: the switch runs once per call, never per element. */
#define CREATE_TYPED(out, n, VAL)                                              \
  do {                                                                         \
    int nt_ = (n) >= MG_PAR_MIN ? mg_threads() : 1;                            \
    void *p_ = mg_ptr(out);                                                    \
    switch ((mg_dtype)(out)->dtype) {                                          \
    case MG_FLOAT32: CREATE_LOOP(float, CONV_F32, VAL); break;                 \
    case MG_FLOAT64: CREATE_LOOP(double, CONV_F64, VAL); break;                \
    case MG_INT32: CREATE_LOOP(int32_t, CONV_I32, VAL); break;                 \
    case MG_INT64: CREATE_LOOP(int64_t, CONV_I64, VAL); break;                 \
    case MG_UINT8: CREATE_LOOP(uint8_t, CONV_U8, VAL); break;                  \
    default: CREATE_LOOP(uint8_t, CONV_BOOL, VAL); break;                      \
    }                                                                          \
  } while (0)

#define CREATE_LOOP(T, CONV, VAL)                                              \
  do {                                                                         \
    T *o_ = (T *)p_;                                                           \
    _Pragma("omp parallel for num_threads(nt_) schedule(static) if (nt_ > 1)") \
    for (int64_t i = 0; i < (n); i++) o_[i] = CONV(VAL(i));                     \
  } while (0)

/* The bytes of one value v of out's dtype, into buf. */
#define CREATE_ONE(out, buf, v)                                                \
  do {                                                                         \
    switch ((mg_dtype)(out)->dtype) {                                          \
    case MG_FLOAT32: { float t_ = CONV_F32(v); memcpy(buf, &t_, 4); } break;   \
    case MG_FLOAT64: { double t_ = CONV_F64(v); memcpy(buf, &t_, 8); } break;  \
    case MG_INT32: { int32_t t_ = CONV_I32(v); memcpy(buf, &t_, 4); } break;   \
    case MG_INT64: { int64_t t_ = CONV_I64(v); memcpy(buf, &t_, 8); } break;   \
    case MG_UINT8: buf[0] = CONV_U8(v); break;                                 \
    default: buf[0] = CONV_BOOL(v); break;                                     \
    }                                                                          \
  } while (0)

#define FULL_VAL(i) value

mg_status k_full(const mg_call *c, mg_tensor *out) {
  double value = A_F(c, 1);
  int64_t n = mg_tensor_numel(out);
  CREATE_TYPED(out, n, FULL_VAL);
  return MG_OK;
}

/* Same parameters as infer_arange (defined in infer_shape.c). */
void mg_arange_params(const mg_call *c, double *start, double *stop, double *step);

#define ARANGE_VAL(i) (start + (double)(i) * step)

mg_status k_arange(const mg_call *c, mg_tensor *out) {
  double start, stop, step;
  mg_arange_params(c, &start, &stop, &step);
  int64_t n = out->shape[0];
  CREATE_TYPED(out, n, ARANGE_VAL);
  return MG_OK;
}

#define LINSPACE_VAL(i) ((i) < half ? start + (double)(i) * step : stop - (double)(n - 1 - (i)) * step)

mg_status k_linspace(const mg_call *c, mg_tensor *out) {
  double start = A_F(c, 0), stop = A_F(c, 1);
  int64_t n = out->shape[0], half = n / 2;
  double step = n > 1 ? (stop - start) / (double)(n - 1) : 0;
  if (n == 1) half = 1;  /* a single value is start */
  CREATE_TYPED(out, n, LINSPACE_VAL);
  return MG_OK;
}

mg_status k_eye(const mg_call *c, mg_tensor *out) {
  (void)c;
  int64_t n = out->shape[0], m = out->shape[1], k = n < m ? n : m;
  size_t es = mg_dtype_size((mg_dtype)out->dtype);
  char *o = mg_ptr(out);
  unsigned char one[8];
  double v = 1.0;
  memset(o, 0, mg_tensor_nbytes(out));  /* zero bits are 0 in every dtype */
  CREATE_ONE(out, one, v);
  for (int64_t i = 0; i < k; i++) memcpy(o + (i * m + i) * (int64_t)es, one, es);
  return MG_OK;
}
