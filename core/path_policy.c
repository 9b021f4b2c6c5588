/*
 * path_policy.c — the file-access policy hook and the "inside this
 * directory" rule the embedding sandbox uses (mg_set_path_policy,
 * mg_path_check, mg_path_within).
 *
 * Every engine function that touches the file system by name (fs.c, the
 * atomic writer and reader, hence safetensors) asks mg_path_check first, so
 * one hook covers the Lua 5.4 module, the LuaJIT FFI binding and C hosts
 * alike. The hook is per thread because a runtime runs on one thread at a
 * time and several runtimes (sandboxed or not) may share a process: the
 * embedding layer installs it around each call into a sandboxed runtime.
 *
 * mg_path_within resolves a path the way the kernel will: relative paths
 * against the working directory, symbolic links and ".." by realpath(3).
 * A path that does not exist yet (a file about to be written, mkdir -p) is
 * resolved through its longest existing prefix; the missing rest may not
 * contain "..", since it cannot be resolved before it exists, nor pass
 * through a dangling link (fopen would create its target). Operations on
 * a name itself (remove, rename) resolve only the parent, so a link inside
 * the directory can be removed whatever it points to, and refuse the allowed
 * directory itself. The check and the operation are two system calls, so a
 * link swapped in between by another process is not caught: the sandbox
 * guards against the script, which cannot make links.
 */
#include "mg.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local mg_path_policy_fn policy_fn;
static _Thread_local void *policy_ud;

void mg_set_path_policy(mg_path_policy_fn fn, void *ud, mg_path_policy_fn *prev_fn, void **prev_ud) {
  if (prev_fn) *prev_fn = policy_fn;
  if (prev_ud) *prev_ud = policy_ud;
  policy_fn = fn;
  policy_ud = ud;
}

mg_status mg_path_check(const char *fname, const char *path, int flags) {
  if (!policy_fn || !path || !*path) return MG_OK;  /* an empty path is the function's own error */
  return policy_fn(policy_ud, fname, path, flags);
}

static int is_dots(const char *s, size_t n) { return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'); }

/* realpath of p (modified in place), through its longest existing prefix:
 * out gets the resolved prefix plus the missing components. 0, or an errno
 * (EXDEV: ".." in the missing part). */
static int within_resolve(char *p, char *out) {
  char tail[PATH_MAX] = "";
  for (;;) {
    if (realpath(p[0] ? p : "/", out)) break;
    if (errno != ENOENT && errno != ENOTDIR) return errno;
    struct stat sb;
    if (lstat(p, &sb) == 0) return EXDEV;  /* a dangling link: where it leads cannot be checked */
    char *slash = strrchr(p, '/');
    const char *last = slash ? slash + 1 : p;
    size_t ln = strlen(last);
    if (ln == 2 && last[0] == '.' && last[1] == '.') return EXDEV;
    if (ln && !is_dots(last, ln)) {
      if (ln + 1 + strlen(tail) >= sizeof tail) return ENAMETOOLONG;
      memmove(tail + ln + 1, tail, strlen(tail) + 1);
      memcpy(tail, last, ln);
      tail[ln] = tail[ln + 1] ? '/' : '\0';
    }
    if (!slash) return ENOENT;  /* cannot happen: p is absolute */
    *slash = '\0';
  }
  size_t n = strlen(out);
  if (tail[0]) {
    if (n + 1 + strlen(tail) >= PATH_MAX) return ENAMETOOLONG;
    if (n > 1) out[n++] = '/';
    strcpy(out + n, tail);
  }
  return 0;
}

static mg_status within_refuse(const char *fname, const char *path, const char *dir) {
  return mg_seterror(MG_EARG, "%s: '%s' is outside the sandbox's allowed directory '%s'", fname, path, dir);
}

mg_status mg_path_within(const char *dir, const char *fname, const char *path, int flags) {
  char abs[PATH_MAX], res[PATH_MAX];
  size_t n = strlen(path), off = 0;
  if (path[0] != '/') {
    if (!getcwd(abs, sizeof abs)) return mg_seterror(MG_EIO, "%s: '%s': cannot read the working directory", fname, path);
    off = strlen(abs);
    abs[off++] = '/';
  }
  if (off + n >= sizeof abs) return mg_seterror(MG_EARG, "%s: '%s': the path is too long", fname, path);
  memcpy(abs + off, path, n + 1);
  n += off;
  while (n > 1 && abs[n - 1] == '/') abs[--n] = '\0';
  const char *last = strrchr(abs, '/') + 1;
  int name_op = (flags & MG_PATH_NOFOLLOW) && !is_dots(last, strlen(last)) && last[0];
  char name[PATH_MAX] = "";
  if (name_op) {  /* resolve the parent only: the name itself is acted on, not followed */
    strcpy(name, last);
    abs[last - abs - 1] = '\0';
  }
  int e = within_resolve(abs, res);
  if (e == EXDEV) return within_refuse(fname, path, dir);
  if (e) return mg_seterror(MG_EIO, "%s: '%s': cannot resolve the path: %s", fname, path, strerror(e));
  if (name_op) {
    size_t rn = strlen(res);
    if (rn + 1 + strlen(name) >= sizeof res) return mg_seterror(MG_EARG, "%s: '%s': the path is too long", fname, path);
    if (rn > 1) res[rn++] = '/';
    strcpy(res + rn, name);
  }
  size_t dl = strlen(dir);
  while (dl > 1 && dir[dl - 1] == '/') dl--;
  int inside = dl == 1 && dir[0] == '/' ? 1 : strncmp(res, dir, dl) == 0 && (res[dl] == '\0' || res[dl] == '/');
  if (inside && (flags & MG_PATH_NOFOLLOW) && strlen(res) == dl)  /* never remove or rename the directory itself */
    inside = 0;
  return inside ? MG_OK : within_refuse(fname, path, dir);
}
