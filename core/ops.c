/*
 * ops.c — the op descriptors, expanded from ops.def, and their attribute
 * schemas.
 *
 * Each row's schema string ("axis:axes keepdims:bool=false") is parsed once,
 * at first use, into mg_attr_desc records; bindings read them to turn their
 * own argument conventions (Lua tables, FFI structs) into mg_attrs generically.
 */
#include "internal.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct op_row {
  const char *name;
  int nin;
  unsigned flags;
  const char *schema;
  mg_infer_fn infer;
  mg_kernel_fn kernel;
  const char *doc;
  mg_grad_fn grad;
} op_row;

static const op_row rows[MG_OP_COUNT] = {
#define MG_OP(id, name, nin, flags, attrs, infer, kernel, grad, doc) \
  {name, nin, flags, attrs, infer, kernel, doc, grad},
#include "ops.def"
#undef MG_OP
};

static mg_attr_desc attr_descs[MG_OP_COUNT][MG_MAX_ATTRS];
static mg_opinfo infos[MG_OP_COUNT];
static pthread_once_t parsed = PTHREAD_ONCE_INIT;

static const struct {
  const char *word;
  mg_attr_kind kind;
} kinds[] = {{"int", MG_A_INT},     {"float", MG_A_FLOAT}, {"bool", MG_A_BOOL},
             {"dtype", MG_A_DTYPE}, {"axis", MG_A_AXIS},   {"axes", MG_A_AXES},
             {"shape", MG_A_SHAPE}, {"ints", MG_A_INTS},   {"enum", MG_A_ENUM}};

static void copy_word(char *dst, size_t cap, const char *src) {
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = 0;
}

/* Parses one "name:kind[(a|b)][=default]" token into d. */
static void parse_attr(const char *tok, size_t len, mg_attr_desc *d) {
  char buf[160];
  memcpy(buf, tok, len);
  buf[len] = 0;
  char *colon = strchr(buf, ':'), *eq = strchr(buf, '='), *paren = strchr(buf, '(');
  *colon = 0;
  copy_word(d->name, sizeof d->name, buf);
  if (eq) *eq = 0;
  if (paren) {  /* enum(a|b|c) */
    *paren = 0;
    char *names = paren + 1;
    names[strcspn(names, ")")] = 0;
    for (char *s = strtok(names, "|"); s && d->nenums < 8; s = strtok(NULL, "|"))
      copy_word(d->enums[d->nenums++], sizeof d->enums[0], s);
  }
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
    if (strcmp(colon + 1, kinds[k].word) == 0) d->kind = kinds[k].kind;
  if (!eq) return;
  const char *def = eq + 1;
  d->has_default = 1;
  mg_dtype dt;
  if (d->kind == MG_A_BOOL) d->def_i = strcmp(def, "true") == 0;
  else if (d->kind == MG_A_DTYPE && mg_dtype_from_name(def, &dt)) d->def_i = dt;
  else if (d->kind == MG_A_ENUM) {
    for (int i = 0; i < d->nenums; i++)
      if (strcmp(d->enums[i], def) == 0) d->def_i = i;
  } else {
    d->def_f = strtod(def, NULL);
    d->def_i = strtoll(def, NULL, 10);
  }
}

static void parse_all(void) {
  for (int op = 0; op < MG_OP_COUNT; op++) {
    const char *s = rows[op].schema;
    int n = 0;
    while (*s) {
      while (*s == ' ') s++;
      size_t len = strcspn(s, " ");
      if (len && n < MG_MAX_ATTRS) parse_attr(s, len, &attr_descs[op][n++]);
      s += len;
    }
    infos[op] = (mg_opinfo){rows[op].name, rows[op].nin, rows[op].flags, n, attr_descs[op],
                            rows[op].doc, rows[op].grad != grad_none};
  }
}

static atomic_int parsed_flag;

const mg_opinfo *mg_op_info(mg_op op) {
  if ((unsigned)op >= MG_OP_COUNT) return NULL;
  if (!atomic_load_explicit(&parsed_flag, memory_order_acquire)) {  /* once, then a load */
    pthread_once(&parsed, parse_all);
    atomic_store_explicit(&parsed_flag, 1, memory_order_release);
  }
  return &infos[op];
}

mg_op mg_op_lookup(const char *name) {
  for (int op = 0; op < MG_OP_COUNT; op++)
    if (strcmp(rows[op].name, name) == 0) return (mg_op)op;
  return MG_OP_COUNT;
}

int mg_op_attr_index(mg_op op, const char *name) {
  const mg_opinfo *info = mg_op_info(op);
  for (int i = 0; info && i < info->nattrs; i++)
    if (strcmp(info->attrs[i].name, name) == 0) return i;
  return -1;
}

void mg_attrs_defaults(mg_op op, mg_attrs *a) {
  const mg_opinfo *info = mg_op_info(op);
  for (int i = 0; i < info->nattrs; i++) {
    if ((a->set >> i) & 1u) continue;
    const mg_attr_desc *d = &info->attrs[i];
    a->v[i].n = 0;
    a->v[i].i[0] = d->def_i;
    a->v[i].f = d->has_default ? d->def_f : NAN;
    if (d->has_default && d->kind != MG_A_AXES && d->kind != MG_A_SHAPE && d->kind != MG_A_INTS)
      a->v[i].n = 1;
  }
}

mg_kernel_fn mg_op_kernel(mg_op op) { return mg_isa_kernel(op, rows[op].kernel); }
mg_infer_fn mg_op_infer(mg_op op) { return rows[op].infer; }
mg_grad_fn mg_op_grad(mg_op op) { return rows[op].grad; }
