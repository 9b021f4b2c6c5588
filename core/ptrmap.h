/*
 * ptrmap.h — a pointer-keyed hash map (see ptrmap.c). Zero-initialise one
 * (ptrmap m = {0}) to start; map_free releases its arrays, not the values.
 */
#ifndef MG_PTRMAP_H
#define MG_PTRMAP_H

#include <stddef.h>

typedef struct ptrmap {
  const void **keys;
  void **vals;
  size_t cap, n;
} ptrmap;

void *map_get(ptrmap *m, const void *k);  /* NULL when absent */
int map_put(ptrmap *m, const void *k, void *v);  /* 0 when out of memory */
void map_free(ptrmap *m);

#endif
