/*
 * atomic_file.c — atomic whole-file writes (mg_write_file_atomic, and the
 * streaming mg_afile_* used by the safetensors writer) and mg_read_file.
 *
 * The classic sequence: create a temp file in the target's directory (same
 * file system, so rename is atomic), write everything, fsync it, rename it
 * over the target, fsync the directory so the rename itself is durable. Any
 * failure removes the temp file and leaves the old target in place.
 *
 * Temp names are ".<base>.tmp.<pid>.<n>": hidden (a directory listing of
 * checkpoints does not see them), unique per process and call (O_EXCL), and
 * they carry the writer's pid, so a writer killed mid-save (SIGKILL, power)
 * leaves garbage that the next open of the same target removes: a temp of
 * that target whose pid no longer runs is stale. A temp whose pid is alive
 * (a concurrent writer, or a reused pid) is left alone; it never breaks a
 * save, since each save makes its own name.
 */
#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mg_afile {
  int fd;
  const char *fname;
  char *path;   /* the target */
  char *tmp;    /* the temp file beside it */
  char *dir;    /* the directory holding both ("." for a bare name) */
};

static char *dup_str(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

/* Removes ".<base>.tmp.<pid>.*" files of dead writers. Best effort: any
 * failure here is ignored, it only tidies up. */
static void afile_clean_stale(const char *dir, const char *base) {
  DIR *d = opendir(dir);
  if (!d) return;
  size_t bl = strlen(base);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    if (n[0] != '.' || strncmp(n + 1, base, bl) != 0 || strncmp(n + 1 + bl, ".tmp.", 5) != 0) continue;
    char *end;
    long pid = strtol(n + 1 + bl + 5, &end, 10);
    if (end == n + 1 + bl + 5 || *end != '.' || pid <= 0) continue;
    if (pid == (long)getpid()) continue;               /* ours: another call of this process */
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;  /* alive, or not ours to judge */
    size_t dl = strlen(dir), nl = strlen(n);
    char *full = malloc(dl + nl + 2);
    if (!full) break;
    snprintf(full, dl + nl + 2, "%s/%s", dir, n);
    unlink(full);
    free(full);
  }
  closedir(d);
}

static void afile_free(mg_afile *f) {
  if (!f) return;
  free(f->path);
  free(f->tmp);
  free(f->dir);
  free(f);
}

mg_status mg_afile_open(const char *path, const char *fname, mg_afile **out) {
  static unsigned counter;  /* with the pid: unique names within a process */
  *out = NULL;
  if (!path || !*path) return mg_seterror(MG_EARG, "%s: the path is empty", fname);
  size_t len = strlen(path);
  if (path[len - 1] == '/') return mg_seterror(MG_EARG, "%s: '%s' names a directory, not a file", fname, path);
  mg_status pst = mg_path_check(fname, path, 0);
  if (pst) return pst;  /* the sandbox's file-access policy */
  mg_afile *f = calloc(1, sizeof *f);
  if (!f) return mg_seterror(MG_ENOMEM, "%s: out of memory", fname);
  f->fd = -1;
  f->fname = fname;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  f->path = dup_str(path, len);
  f->dir = slash ? dup_str(path, slash == path ? 1 : (size_t)(slash - path)) : dup_str(".", 1);
  size_t cap = len + 64;
  f->tmp = malloc(cap);
  if (!f->path || !f->dir || !f->tmp) {
    afile_free(f);
    return mg_seterror(MG_ENOMEM, "%s: out of memory", fname);
  }
  afile_clean_stale(f->dir, base);
  for (int tries = 0; tries < 100 && f->fd < 0; tries++) {
    unsigned n = __atomic_fetch_add(&counter, 1u, __ATOMIC_RELAXED);
    snprintf(f->tmp, cap, "%.*s.%s.tmp.%ld.%u", (int)(base - path), path, base, (long)getpid(), n);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f->fd < 0 && errno != EEXIST) break;
  }
  if (f->fd < 0) {
    mg_status st = mg_seterror(MG_EIO, "%s: cannot create a temp file in '%s' to write '%s': %s", fname,
                               f->dir, path, strerror(errno));
    afile_free(f);
    return st;
  }
  *out = f;
  return MG_OK;
}

mg_status mg_afile_write(mg_afile *f, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
    ssize_t w = write(f->fd, c, chunk);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return mg_seterror(MG_EIO, "%s: writing '%s' failed: %s", f->fname, f->path,
                         w < 0 ? strerror(errno) : "no progress");
    c += w;
    n -= (size_t)w;
  }
  return MG_OK;
}

void mg_afile_abort(mg_afile *f) {
  if (!f) return;
  if (f->fd >= 0) close(f->fd);
  unlink(f->tmp);
  afile_free(f);
}

mg_status mg_afile_commit(mg_afile *f) {
  const char *step = "fsync";
  if (fsync(f->fd) != 0) goto fail;
  step = "close";
  int fd = f->fd;
  f->fd = -1;
  if (close(fd) != 0) goto fail;
  step = "rename";
  if (rename(f->tmp, f->path) != 0) goto fail;
  /* The rename is done; a directory that cannot be fsynced (some file
   * systems refuse) does not undo it, so this step reports nothing. */
  int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  afile_free(f);
  return MG_OK;
fail:;
  mg_status st = mg_seterror(MG_EIO, "%s: cannot write '%s' (%s of the temp file failed: %s)", f->fname,
                             f->path, step, strerror(errno));
  mg_afile_abort(f);
  return st;
}

mg_status mg_write_file_atomic(const char *path, const void *bytes, size_t len) {
  mg_afile *f;
  mg_status st = mg_afile_open(path, "write_file_atomic", &f);
  if (st) return st;
  if (len > 0 && (st = mg_afile_write(f, bytes, len)) != MG_OK) {
    mg_afile_abort(f);
    return st;
  }
  return mg_afile_commit(f);
}

mg_status mg_read_file(const char *path, uint8_t **out, size_t *len) {
  return mg_afile_read(path, "read_file", out, len);
}

mg_status mg_afile_read(const char *path, const char *fname, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  mg_status pst = mg_path_check(fname, path, 0);
  if (pst) return pst;  /* the sandbox's file-access policy */
  /* O_NONBLOCK: opening a FIFO for reading would wait for a writer; we only read regular files */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return mg_seterror(MG_EIO, "%s: cannot open '%s': %s", fname, path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return mg_seterror(MG_EIO, "%s: '%s' is not a regular file", fname, path);
  }
  size_t size = (size_t)sb.st_size, got = 0;
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) {
    close(fd);
    return mg_seterror(MG_ENOMEM, "%s: out of memory reading '%s' (%zu bytes)", fname, path, size);
  }
  while (got < size) {  /* a file that shrinks under us ends early: we keep what was there */
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      mg_status st = mg_seterror(MG_EIO, "%s: reading '%s' failed: %s", fname, path, strerror(errno));
      free(buf);
      close(fd);
      return st;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  close(fd);
  *out = buf;
  *len = got;
  return MG_OK;
}
