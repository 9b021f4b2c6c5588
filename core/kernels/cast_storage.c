/*
 * cast_storage.c — conversion loops to and from the storage dtypes float16,
 * bfloat16, int8 and int16 (ew_cast_loop in elementwise.c hands every pair
 * with one of them here).
 *
 * These loops are what makes the storage dtypes work with every op: mg_apply
 * widens a storage input to float32/int32 with them and rounds the kernel's
 * float32/int32 result back once (apply.c), and mg_copy_into uses them for
 * assignment and printing. Floats narrow with round-to-nearest-even (half.h),
 * float to integer saturates and maps NaN to 0 (as the other casts), integer
 * to integer wraps (C and NumPy).
 */
#include "../half.h"
#include "ew.h"

#define H16(x) mg_f16_to_f32(x)
#define B16(x) mg_bf16_to_f32(x)
/* float value v (evaluated more than once: a plain expression) to an integer type */
#define SAT(v, LO, HI, TMIN, TMAX) ((v) != (v) ? 0 : (v) <= (LO) ? (TMIN) : (v) >= (HI) ? (TMAX) : (v))

#define L(to, from, TI, TO, E) EW_UNARY(cs_##to##_##from, TI, TO, E)

/* to float16 / bfloat16 */
#define TO_HALF(to, F32, F64, ONE)                                              \
  L(to, f32, float, uint16_t, F32(x))                                           \
  L(to, f64, double, uint16_t, F64(x))                                          \
  L(to, i32, int32_t, uint16_t, F64((double)x))                                 \
  L(to, i64, int64_t, uint16_t, F64((double)x))                                 \
  L(to, u8, uint8_t, uint16_t, F32((float)x))                                   \
  L(to, b, uint8_t, uint16_t, x ? (ONE) : 0)                                    \
  L(to, i8, int8_t, uint16_t, F32((float)x))                                    \
  L(to, i16, int16_t, uint16_t, F32((float)x))
TO_HALF(f16, mg_f32_to_f16, mg_f64_to_f16, 0x3c00)
TO_HALF(bf16, mg_f32_to_bf16, mg_f64_to_bf16, 0x3f80)
L(f16, f16, uint16_t, uint16_t, x)
L(f16, bf16, uint16_t, uint16_t, mg_f32_to_f16(B16(x)))
L(bf16, bf16, uint16_t, uint16_t, x)
L(bf16, f16, uint16_t, uint16_t, mg_f32_to_bf16(H16(x)))

/* from float16 / bfloat16 to the other dtypes */
#define FROM_HALF(from, CONV)                                                   \
  L(f32, from, uint16_t, float, CONV(x))                                        \
  L(f64, from, uint16_t, double, (double)CONV(x))                               \
  L(i32, from, uint16_t, int32_t, SAT(CONV(x), -2147483648.0f, 2147483648.0f, INT32_MIN, INT32_MAX)) \
  L(i64, from, uint16_t, int64_t, SAT(CONV(x), -9223372036854775808.0f, 9223372036854775808.0f, INT64_MIN, INT64_MAX)) \
  L(u8, from, uint16_t, uint8_t, SAT(CONV(x), 0.0f, 256.0f, 0, 255))           \
  L(b, from, uint16_t, uint8_t, (x & 0x7fffu) != 0)                              \
  L(i8, from, uint16_t, int8_t, SAT(CONV(x), -128.0f, 128.0f, INT8_MIN, INT8_MAX)) \
  L(i16, from, uint16_t, int16_t, SAT(CONV(x), -32768.0f, 32768.0f, INT16_MIN, INT16_MAX))
FROM_HALF(f16, H16)
FROM_HALF(bf16, B16)

/* to int8 / int16 from the other dtypes */
#define TO_SMALL(to, TO, LO, HI, TMIN, TMAX)                                    \
  L(to, f32, float, TO, SAT(x, (float)(LO), (float)(HI), TMIN, TMAX))           \
  L(to, f64, double, TO, SAT(x, LO, HI, TMIN, TMAX))                            \
  L(to, i32, int32_t, TO, x)                                                    \
  L(to, i64, int64_t, TO, x)                                                    \
  L(to, u8, uint8_t, TO, x)                                                     \
  L(to, b, uint8_t, TO, x != 0)                                                 \
  L(to, i8, int8_t, TO, x)                                                      \
  L(to, i16, int16_t, TO, x)
TO_SMALL(i8, int8_t, -128.0, 128.0, INT8_MIN, INT8_MAX)
TO_SMALL(i16, int16_t, -32768.0, 32768.0, INT16_MIN, INT16_MAX)

/* from int8 / int16 to the other dtypes */
#define FROM_SMALL(from, TI)                                                    \
  L(f32, from, TI, float, x)                                                    \
  L(f64, from, TI, double, x)                                                   \
  L(i32, from, TI, int32_t, x)                                                  \
  L(i64, from, TI, int64_t, x)                                                  \
  L(u8, from, TI, uint8_t, x)                                                   \
  L(b, from, TI, uint8_t, x != 0)
FROM_SMALL(i8, int8_t)
FROM_SMALL(i16, int16_t)

#define ROW_ALL(to)                                                             \
  {[MG_FLOAT32] = cs_##to##_f32, [MG_FLOAT64] = cs_##to##_f64, [MG_INT32] = cs_##to##_i32, \
   [MG_INT64] = cs_##to##_i64,   [MG_UINT8] = cs_##to##_u8,    [MG_BOOL] = cs_##to##_b,    \
   [MG_INT8] = cs_##to##_i8,     [MG_INT16] = cs_##to##_i16}
/* Rows of the plain dtypes hold only the storage sources (the rest is elementwise.c's). */
#define ROW_PLAIN(to)                                                           \
  {[MG_FLOAT16] = cs_##to##_f16, [MG_BFLOAT16] = cs_##to##_bf16, [MG_INT8] = cs_##to##_i8, \
   [MG_INT16] = cs_##to##_i16}

static const mg_loop_fn loops[MG_NDTYPES][MG_NDTYPES] = {
    [MG_FLOAT32] = ROW_PLAIN(f32), [MG_FLOAT64] = ROW_PLAIN(f64), [MG_INT32] = ROW_PLAIN(i32),
    [MG_INT64] = ROW_PLAIN(i64),   [MG_UINT8] = ROW_PLAIN(u8),    [MG_BOOL] = ROW_PLAIN(b),
    [MG_FLOAT16] = {[MG_FLOAT32] = cs_f16_f32, [MG_FLOAT64] = cs_f16_f64, [MG_INT32] = cs_f16_i32,
                    [MG_INT64] = cs_f16_i64, [MG_UINT8] = cs_f16_u8, [MG_BOOL] = cs_f16_b, [MG_INT8] = cs_f16_i8,
                    [MG_INT16] = cs_f16_i16, [MG_FLOAT16] = cs_f16_f16, [MG_BFLOAT16] = cs_f16_bf16},
    [MG_BFLOAT16] = {[MG_FLOAT32] = cs_bf16_f32, [MG_FLOAT64] = cs_bf16_f64, [MG_INT32] = cs_bf16_i32,
                     [MG_INT64] = cs_bf16_i64, [MG_UINT8] = cs_bf16_u8, [MG_BOOL] = cs_bf16_b,
                     [MG_INT8] = cs_bf16_i8, [MG_INT16] = cs_bf16_i16, [MG_FLOAT16] = cs_bf16_f16,
                     [MG_BFLOAT16] = cs_bf16_bf16},
    [MG_INT8] = {[MG_FLOAT32] = cs_i8_f32, [MG_FLOAT64] = cs_i8_f64, [MG_INT32] = cs_i8_i32, [MG_INT64] = cs_i8_i64,
                 [MG_UINT8] = cs_i8_u8, [MG_BOOL] = cs_i8_b, [MG_INT8] = cs_i8_i8, [MG_INT16] = cs_i8_i16,
                 [MG_FLOAT16] = cs_i8_f16, [MG_BFLOAT16] = cs_i8_bf16},
    [MG_INT16] = {[MG_FLOAT32] = cs_i16_f32, [MG_FLOAT64] = cs_i16_f64, [MG_INT32] = cs_i16_i32,
                  [MG_INT64] = cs_i16_i64, [MG_UINT8] = cs_i16_u8, [MG_BOOL] = cs_i16_b, [MG_INT8] = cs_i16_i8,
                  [MG_INT16] = cs_i16_i16, [MG_FLOAT16] = cs_i16_f16, [MG_BFLOAT16] = cs_i16_bf16},
};

mg_loop_fn ew_cast_loop_storage(mg_dtype to, mg_dtype from) { return loops[to][from]; }
