/*
 * ptrmap.c — a pointer-keyed hash map (open addressing, linear probing),
 * used by the tape (tracked tensors, gradients by identity) and by tracing
 * (constants already in a graph). Keys are never deleted: a map lives as long
 * as one tape, one gradient call or one trace.
 */
#include "ptrmap.h"
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static int ptrmap_grow(ptrmap *m);

static size_t ptrmap_hash(const void *p, size_t cap) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (size_t)x & (cap - 1);
}

static void **ptrmap_slot(ptrmap *m, const void *k) {
  if (!m->cap) return NULL;
  for (size_t i = ptrmap_hash(k, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == k) return &m->vals[i];
    if (!m->keys[i]) return NULL;
  }
}

void *map_get(ptrmap *m, const void *k) {
  void **v = ptrmap_slot(m, k);
  return v ? *v : NULL;
}

static int ptrmap_grow(ptrmap *m) {
  ptrmap bigger = {0};
  bigger.cap = m->cap ? m->cap * 2 : 64;
  bigger.keys = calloc(bigger.cap, sizeof *bigger.keys);
  bigger.vals = calloc(bigger.cap, sizeof *bigger.vals);
  if (!bigger.keys || !bigger.vals) {
    free(bigger.keys);
    free(bigger.vals);
    return 0;
  }
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i]) map_put(&bigger, m->keys[i], m->vals[i]);
  free(m->keys);
  free(m->vals);
  *m = bigger;
  return 1;
}

int map_put(ptrmap *m, const void *k, void *v) {
  if ((m->n + 1) * 2 > m->cap && !ptrmap_grow(m)) return 0;
  for (size_t i = ptrmap_hash(k, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == k) {
      m->vals[i] = v;
      return 1;
    }
    if (!m->keys[i]) {
      m->keys[i] = k;
      m->vals[i] = v;
      m->n++;
      return 1;
    }
  }
}

void map_free(ptrmap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

