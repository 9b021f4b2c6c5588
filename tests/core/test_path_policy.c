/*
 * test_path_policy.c — the file-access policy hook and the sandbox's
 * "inside this directory" rule (core/path_policy.c) through mg.h, with no
 * Lua involved: mg_path_within's resolution (relative paths, "..", links,
 * dangling links, paths not there yet, names acted on with NOFOLLOW), and
 * the hook refusing every engine file function before it touches the disk
 * (the embedding sandbox installs it; tests/embed covers that end to end).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct pp_dirs {
  char in[64], out[64], inname_out[160];
} pp_dirs;

static int pp_setup(pp_dirs *d) {
  snprintf(d->in, sizeof d->in, "/tmp/mg_pp_inXXXXXX");
  snprintf(d->out, sizeof d->out, "/tmp/mg_pp_outXXXXXX");
  if (!mkdtemp(d->in) || !mkdtemp(d->out)) return 0;
  char p[160], q[160];
  snprintf(p, sizeof p, "%s/link_out", d->in);
  if (symlink(d->out, p)) return 0;
  snprintf(p, sizeof p, "%s/dangling", d->in);
  snprintf(q, sizeof q, "%s/made", d->out);
  if (symlink(q, p)) return 0;
  snprintf(p, sizeof p, "%s/sub", d->in);
  if (mkdir(p, 0777)) return 0;
  snprintf(d->inname_out, sizeof d->inname_out, "%s/../%s/x", d->in, strrchr(d->out, '/') + 1);
  return 1;
}

static void pp_cleanup(const pp_dirs *d) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", d->in, d->out);
  if (system(cmd)) fprintf(stderr, "  cleanup failed\n");
}

static int pp_ok(const char *dir, const char *path, int flags) { return mg_path_within(dir, "f", path, flags) == MG_OK; }

TEST(path_within_resolves_before_comparing) {
  pp_dirs d;
  REQUIRE(pp_setup(&d));
  char p[200];
  char real_in[4096];
  REQUIRE(realpath(d.in, real_in));
  snprintf(p, sizeof p, "%s/sub/new.txt", d.in);
  CHECK(pp_ok(real_in, p, 0));                         /* not there yet, parent inside */
  snprintf(p, sizeof p, "%s/a/b/c", d.in);
  CHECK(pp_ok(real_in, p, 0));                         /* mkdir -p: missing components */
  snprintf(p, sizeof p, "%s/sub/../sub/x", d.in);
  CHECK(pp_ok(real_in, p, 0));                         /* ".." that stays inside */
  CHECK(!pp_ok(real_in, d.inname_out, 0));             /* ".." that leaves */
  snprintf(p, sizeof p, "%s/missing/../../x", d.in);
  CHECK(!pp_ok(real_in, p, 0));                        /* ".." after a missing directory */
  snprintf(p, sizeof p, "%s/link_out/x", d.in);
  CHECK(!pp_ok(real_in, p, 0));                        /* through a link to elsewhere */
  snprintf(p, sizeof p, "%s/link_out", d.in);
  CHECK(!pp_ok(real_in, p, 0));                        /* the link, followed */
  CHECK(pp_ok(real_in, p, MG_PATH_NOFOLLOW));          /* the link itself (remove, rename) */
  snprintf(p, sizeof p, "%s/dangling", d.in);
  CHECK(!pp_ok(real_in, p, 0));                        /* fopen would create its target */
  CHECK(pp_ok(real_in, p, MG_PATH_NOFOLLOW));
  CHECK(!pp_ok(real_in, real_in, MG_PATH_NOFOLLOW));   /* never the directory itself */
  CHECK(pp_ok(real_in, real_in, 0));
  CHECK(!pp_ok(real_in, d.out, 0));
  CHECK(!pp_ok(real_in, "relative/x", 0));             /* against the working directory */
  snprintf(p, sizeof p, "%sx/y", d.in);                /* a sibling sharing the prefix */
  CHECK(!pp_ok(real_in, p, 0));
  CHECK(mg_path_within(real_in, "save", d.out, 0) == MG_EARG);
  CHECK(strstr(mg_last_error(), "save: '") && strstr(mg_last_error(), "is outside the sandbox's allowed directory"));
  pp_cleanup(&d);
}

static mg_status pp_policy(void *ud, const char *fname, const char *path, int flags) {
  return mg_path_within(ud, fname, path, flags);
}

TEST(path_policy_guards_every_engine_file_function) {
  pp_dirs d;
  REQUIRE(pp_setup(&d));
  char real_in[4096], in_file[200], out_file[200], out_dir[200];
  REQUIRE(realpath(d.in, real_in));
  snprintf(in_file, sizeof in_file, "%s/ok.bin", d.in);
  snprintf(out_file, sizeof out_file, "%s/no.bin", d.out);
  snprintf(out_dir, sizeof out_dir, "%s/nodir", d.out);
  mg_path_policy_fn pf = (mg_path_policy_fn)1;
  void *pu = (void *)1;
  mg_set_path_policy(pp_policy, real_in, &pf, &pu);
  CHECK(pf == NULL && pu == NULL);
  CHECK_OK(mg_write_file_atomic(in_file, "abc", 3));
  uint8_t *buf;
  size_t len;
  CHECK_OK(mg_read_file(in_file, &buf, &len));
  CHECK(len == 3);
  mg_free(buf);
  CHECK(mg_path_exists(in_file) && !mg_path_exists(out_file));
  CHECK(mg_write_file_atomic(out_file, "abc", 3) == MG_EARG);
  CHECK(strstr(mg_last_error(), "write_file_atomic: '") != NULL);
  CHECK(mg_read_file(d.inname_out, &buf, &len) == MG_EARG);
  CHECK(mg_mkdir(out_dir, 1) == MG_EARG && mg_mkdir(out_dir, 0) == MG_EARG);
  char *names;
  int n;
  CHECK(mg_listdir(d.out, &names, &len, &n) == MG_EARG);
  CHECK(mg_remove(d.out) == MG_EARG && mg_remove_tree(d.out) == MG_EARG);
  CHECK(mg_rename(in_file, out_file) == MG_EARG && mg_rename(out_file, in_file) == MG_EARG);
  mg_tensorfile *tf;
  CHECK(mg_safetensors_load(out_file, &tf) == MG_EARG);
  CHECK(strstr(mg_last_error(), "load: '") != NULL);
  CHECK(mg_path_isdir(d.out) == 0);                    /* refused reads as absent */
  mg_set_path_policy(pf, pu, NULL, NULL);
  CHECK(mg_path_isdir(d.out) == 1);
  CHECK_OK(mg_write_file_atomic(out_file, "abc", 3));  /* no hook: anything goes */
  pp_cleanup(&d);
}
