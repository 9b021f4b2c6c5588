/*
 * safetensors.c — tensor files in the safetensors format: a strict parser
 * over a memory buffer, a loader that reads a file once, and the writer.
 *
 * Format: 8 bytes little-endian N, then N bytes of UTF-8 JSON (an object:
 * name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional
 * "__metadata__" string -> string map), then the data area the offsets count
 * into. Files come from anywhere, so the parser trusts nothing: every length
 * is checked against the buffer before it is used, every number in the
 * header is range-checked as an exact non-negative integer, byte counts must
 * equal numel * itemsize, ranges must not overlap, and every tensor is copied
 * out (the result never points into the caller's buffer). The JSON itself is
 * parsed by cJSON (Debian's libcjson), which keeps duplicate keys in order,
 * so duplicates are found here rather than silently overwritten.
 *
 * dtypes: F32 F64 F16 BF16 I8 I16 I32 I64 U8 BOOL load as themselves
 * (float16, bfloat16, int8, int16 are storage dtypes). The writer sorts the
 * tensors as Python's safetensors does (by dtype, wider first, then by name),
 * writes compact JSON padded with spaces to a multiple of 8, and goes
 * through the atomic writer (atomic_file.c).
 */
#include "atomic_file.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads and writes raw little-endian bytes: a big-endian host needs byte swapping here"
#endif

#define ST_MAX_HEADER 100000000u  /* Python's safetensors refuses larger headers too */
#define ST_MAX_EXACT 9007199254740992.0  /* 2^53: above it a JSON number may not be exact */

typedef struct st_entry {
  char *name;
  char file_dtype[8];   /* as written in the file: "F16" */
  mg_dtype dtype;       /* as loaded */
  int ndim;
  int64_t shape[MG_MAX_DIMS];
  uint64_t begin, end;
  int order;            /* position in the header */
  mg_tensor *t;
} st_entry;

struct mg_tensorfile {
  int n, nmeta;
  st_entry *e;
  char **mkey, **mval;
};

/* ---- dtypes --------------------------------------------------------------- */

typedef struct st_dtype {
  const char *name;
  int size;      /* bytes per element in the file */
  int loads_as;  /* an mg_dtype, or -1: not supported */
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4, MG_FLOAT32}, {"F64", 8, MG_FLOAT64}, {"I32", 4, MG_INT32}, {"I64", 8, MG_INT64},
    {"U8", 1, MG_UINT8},    {"BOOL", 1, MG_BOOL},   {"F16", 2, MG_FLOAT16}, {"BF16", 2, MG_BFLOAT16},
    {"I8", 1, MG_INT8},     {"I16", 2, MG_INT16},         {"U16", 2, -1},         {"U32", 4, -1},
    {"U64", 8, -1},         {"F8_E5M2", 1, -1},     {"F8_E4M3", 1, -1},     {"C64", 8, -1},
    {"F8_E8M0", 1, -1},     {"F6_E2M3", 1, -1},     {"F6_E3M2", 1, -1},     {"F4", 1, -1},
};

static const st_dtype *st_dtype_find(const char *name) {
  for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
    if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
  return NULL;
}

static const char *st_dtype_of(mg_dtype dt) {
  static const char *names[MG_NDTYPES] = {"F32", "F64", "I32", "I64", "U8", "BOOL", "F16", "BF16", "I8", "I16"};
  return names[dt];
}

/* ---- UTF-8 ----------------------------------------------------------------- */

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
static int mg_utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t k;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1fu; }
    else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0fu; }
    else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07u; }
    else return 0;
    if (n - i <= k) return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + j] & 0x3fu);
    }
    if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
      return 0;
    i += k + 1;
  }
  return 1;
}

/* ---- the parser ------------------------------------------------------------ */

void mg_tensorfile_free(mg_tensorfile *f) {
  if (!f) return;
  for (int i = 0; i < f->n; i++) {
    free(f->e[i].name);
    mg_tensor_release(f->e[i].t);
  }
  for (int i = 0; i < f->nmeta; i++) {
    free(f->mkey[i]);
    free(f->mval[i]);
  }
  free(f->e);
  free(f->mkey);
  free(f->mval);
  free(f);
}

/* An exact non-negative integer no larger than 2^53, or -1. */
static int64_t st_uint(const cJSON *v) {
  if (!cJSON_IsNumber(v)) return -1;
  double d = v->valuedouble;
  if (!(d >= 0) || d > ST_MAX_EXACT || d != floor(d)) return -1;
  return (int64_t)d;
}

static const char *st_json_type(const cJSON *v) {
  if (cJSON_IsObject(v)) return "an object";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  return "an invalid value";
}

static char *st_strdup(const char *s) {
  size_t n = strlen(s);
  char *p = malloc(n + 1);
  if (p) memcpy(p, s, n + 1);
  return p;
}

static int st_cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails on the first key that occurs twice among obj's members. */
static mg_status st_check_duplicates(const cJSON *obj, const char *what, const char *inside) {
  int n = cJSON_GetArraySize(obj);
  if (n < 2) return MG_OK;
  const char **keys = malloc((size_t)n * sizeof *keys);
  if (!keys) return mg_seterror(MG_ENOMEM, "%s: out of memory", what);
  int i = 0;
  for (const cJSON *c = obj->child; c; c = c->next) keys[i++] = c->string;
  qsort(keys, (size_t)n, sizeof *keys, st_cmp_str);
  mg_status st = MG_OK;
  for (i = 1; i < n && !st; i++)
    if (strcmp(keys[i - 1], keys[i]) == 0)
      st = inside ? mg_seterror(MG_EARG, "%s: %s: the key \"%s\" occurs twice", what, inside, keys[i])
                  : mg_seterror(MG_EARG, "%s: the tensor name \"%s\" occurs twice in the header", what, keys[i]);
  free(keys);
  return st;
}

static mg_status st_parse_metadata(mg_tensorfile *f, const cJSON *m, const char *what) {
  if (!cJSON_IsObject(m))
    return mg_seterror(MG_EARG, "%s: \"__metadata__\" must be an object of strings, got %s", what, st_json_type(m));
  mg_status st = st_check_duplicates(m, what, "\"__metadata__\"");
  if (st) return st;
  int n = cJSON_GetArraySize(m);
  f->mkey = calloc((size_t)n + 1, sizeof *f->mkey);
  f->mval = calloc((size_t)n + 1, sizeof *f->mval);
  if (!f->mkey || !f->mval) return mg_seterror(MG_ENOMEM, "%s: out of memory", what);
  for (const cJSON *c = m->child; c; c = c->next) {
    if (!cJSON_IsString(c))
      return mg_seterror(MG_EARG, "%s: \"__metadata__\" value of \"%s\" must be a string, got %s", what, c->string,
                         st_json_type(c));
    f->mkey[f->nmeta] = st_strdup(c->string);
    f->mval[f->nmeta] = st_strdup(c->valuestring);
    f->nmeta++;
    if (!f->mkey[f->nmeta - 1] || !f->mval[f->nmeta - 1]) return mg_seterror(MG_ENOMEM, "%s: out of memory", what);
  }
  return MG_OK;
}

/* Reads one tensor entry's dtype, shape and offsets, checked against the
 * data area of dlen bytes. */
static mg_status st_parse_entry(st_entry *e, const cJSON *v, uint64_t dlen, const char *what) {
  const char *nm = e->name;
  if (!cJSON_IsObject(v))
    return mg_seterror(MG_EARG, "%s: tensor '%s': the entry must be an object, got %s", what, nm, st_json_type(v));
  mg_status st = st_check_duplicates(v, what, "tensor entry");
  if (st) return st;
  const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
  for (const cJSON *c = v->child; c; c = c->next) {
    if (strcmp(c->string, "dtype") == 0) dt = c;
    else if (strcmp(c->string, "shape") == 0) shape = c;
    else if (strcmp(c->string, "data_offsets") == 0) offs = c;
    else return mg_seterror(MG_EARG, "%s: tensor '%s': unknown field \"%s\" (dtype, shape, data_offsets)", what, nm, c->string);
  }
  if (!dt || !shape || !offs)
    return mg_seterror(MG_EARG, "%s: tensor '%s': missing field \"%s\"", what, nm,
                       !dt ? "dtype" : !shape ? "shape" : "data_offsets");
  if (!cJSON_IsString(dt))
    return mg_seterror(MG_EARG, "%s: tensor '%s': dtype must be a string, got %s", what, nm, st_json_type(dt));
  const st_dtype *d = st_dtype_find(dt->valuestring);
  if (!d)
    return mg_seterror(MG_EDTYPE, "%s: tensor '%s': unknown dtype \"%.32s\"", what, nm, dt->valuestring);
  if (d->loads_as < 0)
    return mg_seterror(MG_EDTYPE, "%s: tensor '%s': dtype %s is not supported (F32, F64, F16, BF16, I8, I16, "
                       "I32, I64, U8, BOOL)", what, nm, d->name);
  snprintf(e->file_dtype, sizeof e->file_dtype, "%s", d->name);
  e->dtype = (mg_dtype)d->loads_as;
  if (!cJSON_IsArray(shape))
    return mg_seterror(MG_EARG, "%s: tensor '%s': shape must be an array, got %s", what, nm, st_json_type(shape));
  int nd = cJSON_GetArraySize(shape);
  if (nd > MG_MAX_DIMS)
    return mg_seterror(MG_ESHAPE, "%s: tensor '%s': %d dimensions, at most %d are supported", what, nm, nd, MG_MAX_DIMS);
  e->ndim = nd;
  uint64_t numel = 1, nonzero = 1;  /* nonzero: the product without zero sizes, bounded too */
  int i = 0;
  for (const cJSON *c = shape->child; c; c = c->next, i++) {
    int64_t s = st_uint(c);
    if (s < 0)
      return mg_seterror(MG_ESHAPE, "%s: tensor '%s': shape entry %d is not a non-negative integer", what, nm, i + 1);
    e->shape[i] = s;
    if (s == 0) numel = 0;
    else if (nonzero > ((uint64_t)INT64_MAX / 8) / (uint64_t)s)
      return mg_seterror(MG_ESHAPE, "%s: tensor '%s': the shape's element count is absurdly large", what, nm);
    else nonzero *= (uint64_t)s;
  }
  if (numel) numel = nonzero;
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
    return mg_seterror(MG_EARG, "%s: tensor '%s': data_offsets must be an array of two integers", what, nm);
  int64_t b = st_uint(offs->child), en = st_uint(offs->child->next);
  if (b < 0 || en < 0)
    return mg_seterror(MG_EARG, "%s: tensor '%s': data_offsets must be non-negative integers", what, nm);
  if (b > en)
    return mg_seterror(MG_EARG, "%s: tensor '%s': data_offsets [%lld, %lld] end before they begin", what, nm,
                       (long long)b, (long long)en);
  if ((uint64_t)en > dlen)
    return mg_seterror(MG_EARG, "%s: tensor '%s': data_offsets [%lld, %lld] run past the data area (%llu bytes): "
                       "the file is truncated or the offsets are wrong", what, nm, (long long)b, (long long)en,
                       (unsigned long long)dlen);
  if ((uint64_t)(en - b) != numel * (uint64_t)d->size)
    return mg_seterror(MG_ESHAPE, "%s: tensor '%s': data_offsets span %lld bytes but %llu %s elements need %llu",
                       what, nm, (long long)(en - b), (unsigned long long)numel, d->name,
                       (unsigned long long)(numel * (uint64_t)d->size));
  e->begin = (uint64_t)b;
  e->end = (uint64_t)en;
  return MG_OK;
}

static int st_cmp_offsets(const void *pa, const void *pb) {
  const st_entry *a = pa, *b = pb;
  if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
  if (a->end != b->end) return a->end < b->end ? -1 : 1;
  return a->order - b->order;
}

/* Copies each entry's bytes into a new tensor (bools made 0/1). */
static mg_status st_make_tensor(st_entry *e, const uint8_t *data, const char *what) {
  mg_status st = mg_tensor_empty(e->dtype, e->ndim, e->shape, &e->t);
  if (st) {
    char msg[512];  /* a copy: mg_seterror writes where mg_last_error points */
    snprintf(msg, sizeof msg, "%s", mg_last_error());
    return mg_seterror(st, "%s: tensor '%s': %s", what, e->name, msg);
  }
  const uint8_t *src = data + e->begin;
  size_t nb = (size_t)(e->end - e->begin);
  uint8_t *dst = mg_tensor_data(e->t);
  if (e->dtype == MG_BOOL) {
    for (size_t i = 0; i < nb; i++) dst[i] = src[i] != 0;  /* any nonzero byte is true */
  } else if (nb) {
    memcpy(dst, src, nb);
  }
  return MG_OK;
}

static mg_status st_parse_header(mg_tensorfile *f, const cJSON *root, uint64_t dlen, const char *what) {
  mg_status st = st_check_duplicates(root, what, NULL);
  if (st) return st;
  int n = cJSON_GetArraySize(root);
  f->e = calloc((size_t)n + 1, sizeof *f->e);
  if (!f->e) return mg_seterror(MG_ENOMEM, "%s: out of memory", what);
  for (const cJSON *c = root->child; c; c = c->next) {
    if (strcmp(c->string, "__metadata__") == 0) {
      if ((st = st_parse_metadata(f, c, what))) return st;
      continue;
    }
    st_entry *e = &f->e[f->n];
    e->order = f->n;
    if (!(e->name = st_strdup(c->string))) return mg_seterror(MG_ENOMEM, "%s: out of memory", what);
    f->n++;
    if ((st = st_parse_entry(e, c, dlen, what))) return st;
  }
  /* File order: by data offset; zero-size tensors keep their header order. */
  qsort(f->e, (size_t)f->n, sizeof *f->e, st_cmp_offsets);
  uint64_t reach = 0;
  const char *last = NULL;
  for (int i = 0; i < f->n; i++) {
    st_entry *e = &f->e[i];
    if (e->begin == e->end) continue;
    if (e->begin < reach)
      return mg_seterror(MG_EARG, "%s: tensors '%s' and '%s' overlap in the data area", what, last, e->name);
    reach = e->end;
    last = e->name;
  }
  return MG_OK;
}

mg_status mg_safetensors_parse(const uint8_t *buf, size_t len, const char *what, mg_tensorfile **out) {
  *out = NULL;
  if (!what) what = "<buffer>";
  if (len < 8)
    return mg_seterror(MG_EARG, "%s: %zu bytes is too short for a safetensors file (an 8-byte header length comes first)",
                       what, len);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
  if (hlen > len - 8)
    return mg_seterror(MG_EARG, "%s: the header length %llu is larger than the %zu bytes that follow it: "
                       "truncated or not a safetensors file", what, (unsigned long long)hlen, len - 8);
  if (hlen > ST_MAX_HEADER)
    return mg_seterror(MG_EARG, "%s: the header length %llu is absurd (at most %u)", what, (unsigned long long)hlen,
                       ST_MAX_HEADER);
  const uint8_t *h = buf + 8;
  if (hlen < 2 || h[0] != '{')
    return mg_seterror(MG_EARG, "%s: the header is not a JSON object (it must start with '{')", what);
  if (!mg_utf8_valid(h, (size_t)hlen)) return mg_seterror(MG_EARG, "%s: the header is not valid UTF-8", what);
  /* cJSON reads a private NUL-terminated copy: whatever it does, it cannot
   * read past the header into (or beyond) the caller's buffer. */
  char *text = malloc((size_t)hlen + 1);
  if (!text) return mg_seterror(MG_ENOMEM, "%s: out of memory reading a %llu-byte header", what, (unsigned long long)hlen);
  memcpy(text, h, (size_t)hlen);
  text[hlen] = 0;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
  if (!root) {
    size_t at = end && end >= text && end <= text + hlen ? (size_t)(end - text) : 0;
    free(text);
    return mg_seterror(MG_EARG, "%s: the header is not valid JSON (error near byte %zu of %llu)", what, at,
                       (unsigned long long)hlen);
  }
  for (const char *p = end; p && p < text + hlen; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      size_t at = (size_t)(p - text);
      cJSON_Delete(root);
      free(text);
      return mg_seterror(MG_EARG, "%s: the header has bytes after its JSON object (at byte %zu)", what, at);
    }
  free(text);
  mg_status st = MG_OK;
  mg_tensorfile *f = calloc(1, sizeof *f);
  if (!f) st = mg_seterror(MG_ENOMEM, "%s: out of memory", what);
  else if (!cJSON_IsObject(root))
    st = mg_seterror(MG_EARG, "%s: the header is %s, not a JSON object", what, st_json_type(root));
  else
    st = st_parse_header(f, root, len - 8 - hlen, what);
  cJSON_Delete(root);
  for (int i = 0; f && !st && i < f->n; i++) st = st_make_tensor(&f->e[i], h + hlen, what);
  if (st) {
    mg_tensorfile_free(f);
    return st;
  }
  *out = f;
  return MG_OK;
}

mg_status mg_safetensors_load(const char *path, mg_tensorfile **out) {
  uint8_t *buf;
  size_t len;
  *out = NULL;
  mg_status st = mg_afile_read(path, "load", &buf, &len);
  if (st) return st;
  st = mg_safetensors_parse(buf, len, path, out);
  free(buf);
  if (st) {  /* "load: " first, as the reader's own messages have it */
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", mg_last_error());
    mg_seterror(st, "load: %s", msg);
  }
  return st;
}

int mg_tensorfile_count(const mg_tensorfile *f) { return f->n; }
const char *mg_tensorfile_name(const mg_tensorfile *f, int i) { return i >= 0 && i < f->n ? f->e[i].name : NULL; }
const char *mg_tensorfile_dtype(const mg_tensorfile *f, int i) { return i >= 0 && i < f->n ? f->e[i].file_dtype : NULL; }
mg_tensor *mg_tensorfile_tensor(const mg_tensorfile *f, int i) { return i >= 0 && i < f->n ? f->e[i].t : NULL; }
int mg_tensorfile_nmeta(const mg_tensorfile *f) { return f->nmeta; }
const char *mg_tensorfile_meta_key(const mg_tensorfile *f, int i) { return i >= 0 && i < f->nmeta ? f->mkey[i] : NULL; }
const char *mg_tensorfile_meta_value(const mg_tensorfile *f, int i) { return i >= 0 && i < f->nmeta ? f->mval[i] : NULL; }

/* ---- the writer ------------------------------------------------------------ */

typedef struct st_buf {
  char *p;
  size_t n, cap;
  int oom;
} st_buf;

static void sb_put(st_buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { b->oom = 1; return; }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void sb_puts(st_buf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string as serde_json writes it (short escapes, other controls as \u00XX). */
static void sb_json_str(st_buf *b, const char *s) {
  sb_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; sb_put(b, esc, 2); }
    else if (c == '\n') sb_puts(b, "\\n");
    else if (c == '\r') sb_puts(b, "\\r");
    else if (c == '\t') sb_puts(b, "\\t");
    else if (c == '\b') sb_puts(b, "\\b");
    else if (c == '\f') sb_puts(b, "\\f");
    else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); sb_puts(b, esc); }
    else sb_put(b, (const char *)s, 1);
  }
  sb_put(b, "\"", 1);
}

typedef struct st_out {
  const char *name;
  mg_tensor *t;
} st_out;

/* Python's order: by its Dtype enum, descending (I64 F64 F32 I32 BF16 F16 I16
 * I8 U8 BOOL: wider first, so every tensor stays aligned), then by name. */
static int st_rank(mg_dtype dt) {
  static const int rank[MG_NDTYPES] = {[MG_INT64] = 10, [MG_FLOAT64] = 9, [MG_FLOAT32] = 8, [MG_INT32] = 7,
                                       [MG_BFLOAT16] = 6, [MG_FLOAT16] = 5, [MG_INT16] = 4, [MG_INT8] = 3,
                                       [MG_UINT8] = 2,   [MG_BOOL] = 1};
  return rank[dt];
}

static int st_cmp_out(const void *pa, const void *pb) {
  const st_out *a = pa, *b = pb;
  int ra = st_rank(mg_tensor_dtype(a->t)), rb = st_rank(mg_tensor_dtype(b->t));
  if (ra != rb) return ra > rb ? -1 : 1;
  return strcmp(a->name, b->name);
}

/* Checks the arguments; the caller's names and tensors, sorted, in *outp. */
static mg_status st_check_save(int n, const char *const *names, mg_tensor *const *tensors, int nmeta,
                               const char *const *keys, const char *const *vals, st_out **outp) {
  const char *fn = "save";
  if (n < 0 || nmeta < 0) return mg_seterror(MG_EARG, "%s: negative count", fn);
  st_out *o = calloc((size_t)n + 1, sizeof *o);
  if (!o) return mg_seterror(MG_ENOMEM, "%s: out of memory", fn);
  mg_status st = MG_OK;
  for (int i = 0; i < n && !st; i++) {
    o[i].name = names[i];
    o[i].t = tensors[i];
    if (!names[i] || !tensors[i]) st = mg_seterror(MG_EARG, "%s: entry %d has no name or no tensor", fn, i + 1);
    else if (!mg_utf8_valid((const uint8_t *)names[i], strlen(names[i])))
      st = mg_seterror(MG_EARG, "%s: the tensor name '%s' is not valid UTF-8", fn, names[i]);
    else if (strcmp(names[i], "__metadata__") == 0)
      st = mg_seterror(MG_EARG, "%s: \"__metadata__\" is reserved for the metadata, not a tensor name", fn);
    else if (mg_tensor_is_symbolic(tensors[i]))
      st = mg_seterror(MG_ESTATE, "%s: tensor '%s' is symbolic (inside a staged function): it has no value to save",
                       fn, names[i]);
    else if (!mg_tensor_data(tensors[i]))
      st = mg_seterror(MG_ESTATE, "%s: tensor '%s' was freed", fn, names[i]);
  }
  for (int i = 0; i < nmeta && !st; i++) {
    if (!keys[i] || !vals[i]) st = mg_seterror(MG_EARG, "%s: metadata entry %d has no key or no value", fn, i + 1);
    else if (!mg_utf8_valid((const uint8_t *)keys[i], strlen(keys[i])) ||
             !mg_utf8_valid((const uint8_t *)vals[i], strlen(vals[i])))
      st = mg_seterror(MG_EARG, "%s: metadata '%s' is not valid UTF-8", fn, keys[i]);
  }
  const char **sorted = st ? NULL : malloc((size_t)n * sizeof *sorted + 1);
  if (!st && !sorted) st = mg_seterror(MG_ENOMEM, "%s: out of memory", fn);
  if (!st) {
    for (int i = 0; i < n; i++) sorted[i] = names[i];
    qsort(sorted, (size_t)n, sizeof *sorted, st_cmp_str);
    for (int i = 1; i < n && !st; i++)
      if (strcmp(sorted[i - 1], sorted[i]) == 0)
        st = mg_seterror(MG_EARG, "%s: the tensor name '%s' occurs twice", fn, sorted[i]);
    qsort(o, (size_t)n, sizeof *o, st_cmp_out);
  }
  free(sorted);
  if (st) {
    free(o);
    return st;
  }
  *outp = o;
  return MG_OK;
}

/* The header: 8-byte length, JSON, spaces up to a multiple of 8. */
static mg_status st_header(const st_out *o, int n, int nmeta, const char *const *keys, const char *const *vals,
                           st_buf *b) {
  char num[64];
  sb_put(b, "\0\0\0\0\0\0\0\0", 8);
  sb_puts(b, "{");
  if (nmeta > 0) {
    sb_puts(b, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) sb_puts(b, ",");
      sb_json_str(b, keys[i]);
      sb_puts(b, ":");
      sb_json_str(b, vals[i]);
    }
    sb_puts(b, "}");
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    mg_tensor *t = o[i].t;
    if (i || nmeta > 0) sb_puts(b, ",");
    sb_json_str(b, o[i].name);
    sb_puts(b, ":{\"dtype\":\"");
    sb_puts(b, st_dtype_of(mg_tensor_dtype(t)));
    sb_puts(b, "\",\"shape\":[");
    for (int d = 0; d < mg_tensor_ndim(t); d++) {
      snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)mg_tensor_shape(t)[d]);
      sb_puts(b, num);
    }
    uint64_t nb = mg_tensor_nbytes(t);
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
             (unsigned long long)(off + nb));
    sb_puts(b, num);
    off += nb;
  }
  sb_puts(b, "}");
  while ((b->n - 8) % 8) sb_puts(b, " ");
  if (b->oom) return mg_seterror(MG_ENOMEM, "save: out of memory building the header");
  uint64_t hlen = b->n - 8;
  for (int i = 0; i < 8; i++) b->p[i] = (char)((hlen >> (8 * i)) & 0xff);
  return MG_OK;
}

/* Writes t's elements row-major: straight from its buffer when contiguous,
 * else through a contiguous copy. */
static mg_status st_write_tensor(mg_afile *f, const st_out *o) {
  size_t nb = mg_tensor_nbytes(o->t);
  if (nb == 0) return MG_OK;
  if (mg_tensor_is_contiguous(o->t)) return mg_afile_write(f, mg_tensor_data(o->t), nb);
  void *tmp = malloc(nb);
  if (!tmp) return mg_seterror(MG_ENOMEM, "save: out of memory copying tensor '%s' (%zu bytes)", o->name, nb);
  mg_status st = mg_tensor_copy_to(o->t, tmp, nb);
  if (!st) st = mg_afile_write(f, tmp, nb);
  free(tmp);
  return st;
}

static mg_status st_serialize(int n, const char *const *names, mg_tensor *const *tensors, int nmeta,
                              const char *const *keys, const char *const *vals, st_out **o, st_buf *b) {
  mg_status st = st_check_save(n, names, tensors, nmeta, keys, vals, o);
  if (st) return st;
  if ((st = st_header(*o, n, nmeta, keys, vals, b))) {
    free(*o);
    *o = NULL;
  }
  return st;
}

mg_status mg_safetensors_save(const char *path, int n, const char *const *names, mg_tensor *const *tensors,
                              int nmeta, const char *const *keys, const char *const *vals) {
  st_out *o = NULL;
  st_buf b = {0};
  mg_afile *f = NULL;
  mg_status st = st_serialize(n, names, tensors, nmeta, keys, vals, &o, &b);
  if (!st) st = mg_afile_open(path, "save", &f);
  if (!st) st = mg_afile_write(f, b.p, b.n);
  for (int i = 0; i < n && !st; i++) st = st_write_tensor(f, &o[i]);
  if (!st) st = mg_afile_commit(f);
  else mg_afile_abort(f);
  free(o);
  free(b.p);
  return st;
}
