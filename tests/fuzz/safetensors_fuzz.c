/*
 * safetensors_fuzz.c — libFuzzer target for the safetensors parser
 * (core/safetensors.c): any byte string must give MG_OK or an error with a
 * message, never a crash, an out-of-bounds read (ASan), undefined behaviour
 * (UBSan) or a leak. Built and run for 60 s by `make fuzz`, starting from
 * tests/fuzz/corpus/safetensors/ (small valid and broken files).
 *
 * Each accepted file is also checked for the parser's promises: every
 * tensor has data of its stated size, names are non-NULL, and the data
 * ranges it reports fit the input (so a bug that accepts a lying header
 * shows up here even when it happens not to read out of bounds).
 */
#include "mg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mg_tensorfile *f = NULL;
  mg_status st = mg_safetensors_parse(data, size, "fuzz", &f);
  if (st) {
    if (f || mg_last_error()[0] == 0) abort();  /* an error must say what went wrong */
    return 0;
  }
  size_t total = 0;
  for (int i = 0; i < mg_tensorfile_count(f); i++) {
    mg_tensor *t = mg_tensorfile_tensor(f, i);
    if (!t || !mg_tensorfile_name(f, i) || !mg_tensorfile_dtype(f, i)) abort();
    size_t nb = mg_tensor_nbytes(t);
    const char *dt = mg_tensorfile_dtype(f, i);
    total += strchr(dt, '1') ? nb / 2 : nb;  /* F16/BF16 grew 2 -> 4 bytes */
    volatile uint8_t sink = 0;
    const uint8_t *p = mg_tensor_data(t);
    for (size_t k = 0; k < nb; k++) sink ^= p[k];  /* touch every byte (ASan checks it) */
    (void)sink;
  }
  if (total > size) abort();  /* the tensors cannot hold more than the file did */
  for (int i = 0; i < mg_tensorfile_nmeta(f); i++)
    if (!mg_tensorfile_meta_key(f, i) || !mg_tensorfile_meta_value(f, i)) abort();
  mg_tensorfile_free(f);
  return 0;
}
