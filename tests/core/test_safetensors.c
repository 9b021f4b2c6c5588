/*
 * test_safetensors.c — the safetensors parser and writer and the atomic file
 * writer (core/safetensors.c, core/atomic_file.c) through mg.h: a save/parse
 * round trip, every truncation of a valid file rejected with a message, all
 * 65536 halves converted exactly, and a failed atomic write that leaves the
 * old target and no temp file. The Lua-level cases (hostile headers, Python
 * fixtures) are in tests/spec/io_spec.lua; the fuzzer in tests/fuzz/.
 */
#include "harness.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory under /tmp; the caller removes it. */
static void tmpdir(char *buf, size_t cap) {
  snprintf(buf, cap, "/tmp/mg_st_XXXXXX");
  if (!mkdtemp(buf)) buf[0] = 0;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  if (d) closedir(d);
  return n;
}

TEST(safetensors_round_trip_and_truncations) {
  char dir[64], path[128];
  tmpdir(dir, sizeof dir);
  REQUIRE(dir[0]);
  snprintf(path, sizeof path, "%s/t.safetensors", dir);
  int64_t s23[2] = {2, 3}, s0[1] = {0};
  float a[6] = {1, 2, 3, 4, 5, 6};
  int64_t b[1] = {-5};
  mg_tensor *ta, *tb, *te;
  CHECK_OK(mg_tensor_from_data(MG_FLOAT32, 2, s23, a, &ta));
  CHECK_OK(mg_tensor_from_data(MG_INT64, 0, NULL, b, &tb));
  CHECK_OK(mg_tensor_empty(MG_UINT8, 1, s0, &te));
  const char *names[3] = {"a", "b", "e"}, *keys[1] = {"k"}, *vals[1] = {"v"};
  mg_tensor *ts[3] = {ta, tb, te};
  CHECK_OK(mg_safetensors_save(path, 3, names, ts, 1, keys, vals));
  uint8_t *buf;
  size_t len;
  CHECK_OK(mg_read_file(path, &buf, &len));
  mg_tensorfile *f;
  CHECK_OK(mg_safetensors_parse(buf, len, "t", &f));
  CHECK(mg_tensorfile_count(f) == 3);
  CHECK(strcmp(mg_tensorfile_name(f, 0), "b") == 0);  /* I64 before F32 before U8 */
  CHECK(strcmp(mg_tensorfile_name(f, 1), "a") == 0);
  CHECK(mg_tensorfile_nmeta(f) == 1 && strcmp(mg_tensorfile_meta_value(f, 0), "v") == 0);
  CHECK(mg_tensorfile_name(f, 3) == NULL && mg_tensorfile_tensor(f, -1) == NULL);
  float back[6];
  CHECK_OK(mg_tensor_copy_to(mg_tensorfile_tensor(f, 1), back, sizeof back));
  CHECK(memcmp(back, a, sizeof a) == 0);
  CHECK(mg_tensor_get_i64(mg_tensorfile_tensor(f, 0), 0) == -5);
  CHECK(mg_tensor_ndim(mg_tensorfile_tensor(f, 0)) == 0);
  mg_tensorfile_free(f);
  /* Every proper prefix is an error with a message (and no leak: ASan). */
  for (size_t n = 0; n < len; n++) {
    uint8_t *cut = malloc(n ? n : 1);  /* exactly n bytes: ASan sees any read past them */
    memcpy(cut, buf, n);
    f = NULL;
    CHECK(mg_safetensors_parse(cut, n, "cut", &f) != MG_OK);
    CHECK(f == NULL && mg_last_error()[0]);
    free(cut);
  }
  mg_free(buf);
  mg_tensor_release(ta);
  mg_tensor_release(tb);
  mg_tensor_release(te);
  unlink(path);
  rmdir(dir);
}

TEST(safetensors_f16_all_values) {
  /* One F16 tensor of every bit pattern, read by hand and by the compiler. */
  const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}";
  size_t hl = strlen(hdr), len = 8 + hl + 131072;
  uint8_t *img = malloc(len);
  REQUIRE(img);
  for (int i = 0; i < 8; i++) img[i] = (uint8_t)((uint64_t)hl >> (8 * i));
  memcpy(img + 8, hdr, hl);
  for (uint32_t v = 0; v < 65536; v++) {
    img[8 + hl + 2 * v] = (uint8_t)(v & 0xff);
    img[8 + hl + 2 * v + 1] = (uint8_t)(v >> 8);
  }
  mg_tensorfile *f;
  CHECK_OK(mg_safetensors_parse(img, len, "f16", &f));
  /* F16 loads as float16, bit for bit; its values (widened by half.h) are the compiler's */
  const mg_tensor *t = mg_tensorfile_tensor(f, 0);
  CHECK(mg_tensor_dtype(t) == MG_FLOAT16);
  CHECK(memcmp(mg_tensor_data((mg_tensor *)t), img + 8 + hl, 131072) == 0);
  int bad = 0;
  for (uint32_t v = 0; v < 65536; v++) {
    uint16_t h = (uint16_t)v;
    _Float16 x;
    memcpy(&x, &h, 2);
    double want = (double)(float)x, got = mg_tensor_get_f64(t, v);
    if (isnan(want) ? !isnan(got) : want != got) bad++;
  }
  CHECK(bad == 0);
  mg_tensorfile_free(f);
  free(img);
}

TEST(atomic_write_failure_keeps_the_old_file) {
  char dir[64], path[128], sub[128];
  tmpdir(dir, sizeof dir);
  REQUIRE(dir[0]);
  snprintf(path, sizeof path, "%s/f", dir);
  CHECK_OK(mg_write_file_atomic(path, "old", 3));
  CHECK_OK(mg_write_file_atomic(path, "new!", 4));
  uint8_t *buf;
  size_t len;
  CHECK_OK(mg_read_file(path, &buf, &len));
  CHECK(len == 4 && memcmp(buf, "new!", 4) == 0);
  mg_free(buf);
  /* The rename fails (the target is a non-empty directory): an error, the
   * directory untouched, and the temp file gone. */
  snprintf(sub, sizeof sub, "%s/d", dir);
  mkdir(sub, 0700);
  char inner[160];
  snprintf(inner, sizeof inner, "%s/x", sub);
  CHECK_OK(mg_write_file_atomic(inner, "x", 1));
  CHECK(mg_write_file_atomic(sub, "data", 4) == MG_EIO);
  CHECK(strstr(mg_last_error(), "rename") != NULL);
  CHECK(count_entries(dir) == 2);  /* f and d: no temp file left */
  CHECK(count_entries(sub) == 1);
  unlink(inner);
  rmdir(sub);
  unlink(path);
  rmdir(dir);
}
