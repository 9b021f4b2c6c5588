/*
 * print.c — tensors as text, after NumPy's array2string.
 *
 * Printing is two passes over the elements that will be shown (all of them,
 * or the first and last PRINT_EDGE of each long axis once the tensor has more
 * than PRINT_THRESHOLD elements). The first pass picks one format for the
 * whole tensor, as NumPy does: integers right-aligned to a common width;
 * floats in positional notation with up to PRINT_PREC fractional digits
 * (trailing zeros trimmed, so 1 prints "1." and 0.5 "0.5", padded so the
 * points line up), or in scientific notation with a common mantissa length
 * when the magnitudes need it (max >= 1e8, min < 1e-4, or max/min > 1000).
 * The second pass writes the text: on one line when that fits in the width,
 * else in NumPy's layout, one row per line with blank lines between blocks,
 * long rows wrapped and indented under the first bracket.
 *
 * All text goes into a growing buffer that remembers an allocation failure,
 * so the writers need no error paths and the caller gets NULL on OOM.
 */
#include "internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define PRINT_EDGE 3          /* items kept at each end of a summarised axis */
#define PRINT_THRESHOLD 1000  /* numel above which long axes are summarised */
#define PRINT_PREC 4          /* fractional digits of floats (PyTorch's default) */
#define PRINT_PREFIX "tensor("
#define PRINT_ELEM 64         /* room for one element's text */

typedef struct pbuf {
  char *s;
  size_t n, cap;
  int oom;
} pbuf;

static void print_add(pbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}

static void print_puts(pbuf *b, const char *s) { print_add(b, s, strlen(s)); }

static void print_rep(pbuf *b, char c, int n) {
  for (int i = 0; i < n; i++) print_add(b, &c, 1);
}

/* Drops trailing blanks (the space of ", " before a line break). */
static void print_rstrip(pbuf *b) {
  while (!b->oom && b->n && b->s[b->n - 1] == ' ') b->s[--b->n] = '\0';
}

/* Length of the last line written so far. */
static size_t print_linelen(const pbuf *b) {
  size_t i = b->n;
  while (i && b->s[i - 1] != '\n') i--;
  return b->n - i;
}

enum { KIND_INT, KIND_BOOL, KIND_FLOAT };

/* The one format every element of a tensor is written with. */
typedef struct pfmt {
  int kind;
  int width;                 /* of every element's text */
  int exp;                   /* floats: scientific notation */
  int prec;                  /* exp: mantissa digits after the point */
  int pad_left, pad_right;   /* floats: widths around the point */
  int exp_size;              /* exp: digits of the exponent */
} pfmt;

typedef struct printer {
  const mg_tensor *t;
  int64_t cstride[MG_MAX_DIMS];  /* row-major strides of the shape, for flat indices */
  int summarise;
  pfmt f;
  pbuf *b;
} printer;

/* Items shown along `axis` (without the "..."), and the index of the k-th. */
static int64_t print_shown(const printer *p, int axis) {
  int64_t n = p->t->shape[axis];
  return p->summarise && n > 2 * PRINT_EDGE ? 2 * PRINT_EDGE : n;
}

static int64_t print_index(const printer *p, int axis, int64_t k) {
  int64_t n = p->t->shape[axis];
  return k < PRINT_EDGE || print_shown(p, axis) == n ? k : n - 2 * PRINT_EDGE + k;
}

/* Calls fn on the flat index of every shown element, in order. */
typedef void (*print_visit)(printer *p, int64_t flat, void *ud);

static void print_walk(printer *p, int axis, int64_t flat, print_visit fn, void *ud) {
  if (axis == p->t->ndim) {
    fn(p, flat, ud);
    return;
  }
  int64_t cnt = print_shown(p, axis);
  for (int64_t k = 0; k < cnt; k++)
    print_walk(p, axis + 1, flat + print_index(p, axis, k) * p->cstride[axis], fn, ud);
}

/* ---- choosing the format --------------------------------------------------- */

typedef struct fscan {
  double minabs, maxabs;     /* over finite non-zero values */
  int nonzero, finite, nan, inf, neginf;
  int intlen, fraclen, explen;
} fscan;

static void print_range(printer *p, int64_t flat, void *ud) {
  fscan *s = ud;
  double v = mg_tensor_get_f64(p->t, flat);
  if (isnan(v)) {
    s->nan = 1;
  } else if (isinf(v)) {
    s->inf = 1;
    s->neginf |= v < 0;
  } else if (v != 0) {
    double a = fabs(v);
    if (!s->nonzero || a < s->minabs) s->minabs = a;
    if (!s->nonzero || a > s->maxabs) s->maxabs = a;
    s->nonzero = 1;
  }
}

/* Cuts trailing zeros after the point, keeping the point: "1.5000" -> "1.5". */
static void print_trim(char *s) {
  char *end = s + strlen(s);
  while (end > s && end[-1] == '0' && strchr(s, '.')) *--end = '\0';
}

/* Widths of the trimmed text of one finite value: integer part, fraction,
 * exponent digits. */
static void print_widths(printer *p, int64_t flat, void *ud) {
  fscan *s = ud;
  char buf[PRINT_ELEM];
  double v = mg_tensor_get_f64(p->t, flat);
  if (!isfinite(v)) return;
  s->finite = 1;
  snprintf(buf, sizeof buf, p->f.exp ? "%.*e" : "%.*f", PRINT_PREC, v);
  char *e = strchr(buf, 'e');
  if (e) {
    int digits = (int)strlen(e + 2);
    if (digits > s->explen) s->explen = digits;
    *e = '\0';
  }
  print_trim(buf);
  int intlen = (int)(strchr(buf, '.') - buf), fraclen = (int)strlen(buf) - intlen - 1;
  if (intlen > s->intlen) s->intlen = intlen;
  if (fraclen > s->fraclen) s->fraclen = fraclen;
}

static void print_intwidth(printer *p, int64_t flat, void *ud) {
  char buf[PRINT_ELEM];
  int n = p->f.kind == KIND_BOOL ? (mg_tensor_get_i64(p->t, flat) ? 4 : 5)
                                 : snprintf(buf, sizeof buf, "%lld", (long long)mg_tensor_get_i64(p->t, flat));
  int *w = ud;
  if (n > *w) *w = n;
}

static void print_choose(printer *p) {
  mg_dtype dt = (mg_dtype)p->t->dtype;
  pfmt *f = &p->f;
  memset(f, 0, sizeof *f);
  f->kind = dt == MG_BOOL ? KIND_BOOL : mg_dtype_is_float(dt) ? KIND_FLOAT : KIND_INT;
  if (f->kind != KIND_FLOAT) {
    print_walk(p, 0, 0, print_intwidth, &f->width);
    return;
  }
  fscan s = {0};
  print_walk(p, 0, 0, print_range, &s);
  f->exp = s.nonzero && (s.maxabs >= 1e8 || s.minabs < 1e-4 || s.maxabs / s.minabs > 1000);
  print_walk(p, 0, 0, print_widths, &s);
  if (s.finite) {
    f->pad_left = s.intlen;
    f->prec = s.fraclen;
    f->exp_size = s.explen;
    f->pad_right = f->exp ? f->exp_size + 2 + f->prec : s.fraclen;
  }
  if (s.nan || s.inf) {              /* "nan", "inf", "-inf" must fit too */
    int need = (s.neginf ? 4 : 3) - (f->pad_right + 1);
    if (need > f->pad_left) f->pad_left = need;
  }
  f->width = f->pad_left + f->pad_right + 1;
}

/* ---- writing elements ------------------------------------------------------ */

/* out = `left` spaces, a, b, `right` spaces (bounded by PRINT_ELEM). */
static void print_join(char *out, int left, const char *a, const char *b, int right) {
  size_t n = 0;
  for (; left > 0 && n < PRINT_ELEM - 1; left--) out[n++] = ' ';
  for (; *a && n < PRINT_ELEM - 1; a++) out[n++] = *a;
  for (; *b && n < PRINT_ELEM - 1; b++) out[n++] = *b;
  for (; right > 0 && n < PRINT_ELEM - 1; right--) out[n++] = ' ';
  out[n] = '\0';
}

/* Writes the fixed-notation text of finite v, padded around the point. */
static void print_fixed(const pfmt *f, double v, char *out) {
  char buf[PRINT_ELEM];
  snprintf(buf, sizeof buf, "%.*f", PRINT_PREC, v);
  print_trim(buf);
  int intlen = (int)(strchr(buf, '.') - buf), fraclen = (int)strlen(buf) - intlen - 1;
  print_join(out, f->pad_left - intlen, buf, "", f->pad_right - fraclen);
}

/* Scientific: every mantissa has f->prec digits, every exponent f->exp_size. */
static void print_exp(const pfmt *f, double v, char *out) {
  char buf[PRINT_ELEM];
  snprintf(buf, sizeof buf, "%#.*e", f->prec, v);  /* '#' keeps "1." when prec is 0 */
  char *e = strchr(buf, 'e');
  *e = '\0';
  int intlen = (int)(strchr(buf, '.') - buf);
  char tail[16];                                   /* "e+05": exponent zero-padded */
  int zeros = f->exp_size - (int)strlen(e + 2);
  snprintf(tail, sizeof tail, "e%c%.*s%.3s", e[1], zeros > 0 ? zeros : 0, "0000", e + 2);
  print_join(out, f->pad_left - intlen, buf, tail, 0);
}

static void print_elem(const printer *p, int64_t flat, char *out) {
  const pfmt *f = &p->f;
  if (f->kind == KIND_INT) {
    snprintf(out, PRINT_ELEM, "%*lld", f->width, (long long)mg_tensor_get_i64(p->t, flat));
  } else if (f->kind == KIND_BOOL) {
    snprintf(out, PRINT_ELEM, "%*s", f->width, mg_tensor_get_i64(p->t, flat) ? "true" : "false");
  } else {
    double v = mg_tensor_get_f64(p->t, flat);
    if (!isfinite(v))
      snprintf(out, PRINT_ELEM, "%*s", f->width, isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
    else if (f->exp) print_exp(f, v, out);
    else print_fixed(f, v, out);
  }
}

/* ---- layout ------------------------------------------------------------------ */

/* Everything on one line: "[[1, 2], [3, 4]]". Stops early once past `limit`. */
static void print_line(printer *p, int axis, int64_t flat, size_t limit) {
  char buf[PRINT_ELEM];
  if (axis == p->t->ndim) {
    print_elem(p, flat, buf);
    print_puts(p->b, buf);
    return;
  }
  int64_t cnt = print_shown(p, axis);
  print_puts(p->b, "[");
  for (int64_t k = 0; k < cnt && p->b->n <= limit; k++) {
    if (k) print_puts(p->b, ", ");
    if (k == PRINT_EDGE && cnt < p->t->shape[axis]) print_puts(p->b, "..., ");
    print_line(p, axis + 1, flat + print_index(p, axis, k) * p->cstride[axis], limit);
  }
  print_puts(p->b, "]");
}

/* Appends one word of a row, breaking the line first when it would pass
 * `width` (NumPy's _extendLine: never break a line that holds only indent). */
static void print_word(printer *p, const char *w, int indent, int width, int *line) {
  int n = (int)strlen(w);
  if (*line + n > width && *line > indent) {
    print_rstrip(p->b);
    print_puts(p->b, "\n");
    print_rep(p->b, ' ', indent);
    *line = indent;
  }
  print_puts(p->b, w);
  *line += n;
}

/* NumPy's layout. `indent` is the column after this level's "[", `width`
 * the room left for it (one less per level, for the closing brackets). */
static void print_block(printer *p, int axis, int64_t flat, int indent, int width) {
  int64_t cnt = print_shown(p, axis);
  int summarised = cnt < p->t->shape[axis], left = p->t->ndim - axis;
  print_puts(p->b, "[");
  if (left == 1) {
    char buf[PRINT_ELEM];
    int line = indent;
    for (int64_t k = 0; k < cnt; k++) {
      if (k == PRINT_EDGE && summarised) {
        print_word(p, "...", indent, width - 1, &line);
        print_puts(p->b, ", ");
        line += 2;
      }
      print_elem(p, flat + print_index(p, axis, k) * p->cstride[axis], buf);
      print_word(p, buf, indent, width - 1, &line);
      if (k + 1 < cnt) {
        print_puts(p->b, ", ");
        line += 2;
      }
    }
  } else {
    for (int64_t k = 0; k < cnt; k++) {
      if (k == PRINT_EDGE && summarised) {
        print_puts(p->b, "...,");
        print_rep(p->b, '\n', left - 1);
        print_rep(p->b, ' ', indent);
      }
      print_block(p, axis + 1, flat + print_index(p, axis, k) * p->cstride[axis], indent + 1, width - 1);
      if (k + 1 < cnt) {
        print_puts(p->b, ",");
        print_rep(p->b, '\n', left - 1);
        print_rep(p->b, ' ', indent);
      }
    }
  }
  print_puts(p->b, "]");
}

/* ---- entry point ------------------------------------------------------------- */

static char *print_finish(pbuf *b) {
  if (b->oom || !b->s) {
    free(b->s);
    return NULL;
  }
  return b->s;
}

/* "tensor([], shape=(0,3), dtype=float32)"; a 1-d one omits the shape. */
static char *print_empty(const mg_tensor *t, pbuf *b) {
  char sb[MG_SHAPE_BUF];
  print_puts(b, PRINT_PREFIX "[], ");
  if (t->ndim > 1) {
    print_puts(b, "shape=");
    print_puts(b, mg_shape_str(t->ndim, t->shape, sb, sizeof sb));
    print_puts(b, ", ");
  }
  print_puts(b, "dtype=");
  print_puts(b, mg_dtype_name((mg_dtype)t->dtype));
  print_puts(b, ")");
  return print_finish(b);
}

char *mg_tensor_format(const mg_tensor *t, int max_width) {
  pbuf b = {0};
  if (max_width <= 0) max_width = 80;
  if (!t->storage) {
    print_puts(&b, PRINT_PREFIX "<freed>)");
    return print_finish(&b);
  }
  if (mg_tensor_numel(t) == 0) return print_empty(t, &b);
  printer p = {.t = t, .b = &b, .summarise = mg_tensor_numel(t) > PRINT_THRESHOLD};
  mg_contiguous_strides(t->ndim, t->shape, p.cstride);
  print_choose(&p);
  char dtype[32];
  snprintf(dtype, sizeof dtype, "dtype=%s)", mg_dtype_name((mg_dtype)t->dtype));

  print_puts(&b, PRINT_PREFIX);
  print_line(&p, 0, 0, (size_t)max_width);
  print_puts(&b, ", ");
  print_puts(&b, dtype);
  if (b.oom || b.n <= (size_t)max_width || t->ndim == 0) return print_finish(&b);

  b.n = 0;                                   /* too long: NumPy's layout instead */
  print_puts(&b, PRINT_PREFIX);
  print_block(&p, 0, 0, (int)strlen(PRINT_PREFIX) + 1, max_width - 1);  /* -1: the "," after */
  print_puts(&b, ",");
  if (print_linelen(&b) + 1 + strlen(dtype) > (size_t)max_width) {
    print_puts(&b, "\n");
    print_rep(&b, ' ', (int)strlen(PRINT_PREFIX));
  } else {
    print_puts(&b, " ");
  }
  print_puts(&b, dtype);
  return print_finish(&b);
}
