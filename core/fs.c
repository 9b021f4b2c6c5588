/*
 * fs.c — paths and directories for the stdlib (mg.io.exists, isdir, mkdir,
 * listdir, remove, remove_tree, rename): the directory handling model:save
 * and the checkpoint managers need, done with POSIX calls instead of a shell
 * or an optional Lua library, so it works with any path (quotes, spaces,
 * leading dashes) and on hosts that have no shell.
 *
 * remove_tree never follows a symbolic link: it walks with openat/fdopendir
 * relative to directory descriptors opened O_NOFOLLOW and removes a link as a
 * link, so a link to a directory elsewhere (or a directory swapped for a link
 * while the walk runs) cannot make it delete outside the tree. It refuses
 * "", "/" and paths ending in "." or "..". rename fsyncs the directories
 * involved afterwards, as the atomic file writer does, so the new name is
 * durable. Errors name the function, the path and strerror(errno). Each
 * function asks the file-access policy first (mg_path_check, path_policy.c).
 */
#include "mg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A path the policy refuses (mg_path_check) reads as absent: these two have no status to fail with. */
int mg_path_exists(const char *path) {
  struct stat sb;
  return path && *path && mg_path_check("exists", path, 0) == MG_OK && stat(path, &sb) == 0;
}

static int fs_isdir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int mg_path_isdir(const char *path) {
  return path && *path && mg_path_check("isdir", path, 0) == MG_OK && fs_isdir(path);
}

static mg_status fs_empty(const char *fname) { return mg_seterror(MG_EARG, "%s: the path is empty", fname); }

/* mkdir of one path; an existing directory is fine, anything else there is an error. */
static mg_status fs_mkdir1(const char *path, const char *shown) {
  if (mkdir(path, 0777) == 0) return MG_OK;
  int e = errno;
  if (e == EEXIST || e == EISDIR) {
    if (fs_isdir(path)) return MG_OK;  /* the parents of an allowed path may lie outside a sandbox */
    if (!strcmp(path, shown))
      return mg_seterror(MG_EIO, "mkdir: cannot create directory '%s': it exists and is not a directory", path);
    return mg_seterror(MG_EIO, "mkdir: cannot create directory '%s': '%s' exists and is not a directory", shown,
                       path);
  }
  return mg_seterror(MG_EIO, "mkdir: cannot create directory '%s': %s", shown, strerror(e));
}

mg_status mg_mkdir(const char *path, int parents) {
  if (!path || !*path) return fs_empty("mkdir");
  mg_status pst = mg_path_check("mkdir", path, 0);
  if (pst) return pst;
  if (!parents) return fs_mkdir1(path, path);
  size_t n = strlen(path);
  char *p = malloc(n + 1);
  if (!p) return mg_seterror(MG_ENOMEM, "mkdir: out of memory");
  memcpy(p, path, n + 1);
  mg_status st = MG_OK;
  /* each prefix ending before a '/' (skipping the root and repeated slashes), then the whole path */
  for (size_t i = 1; i <= n && st == MG_OK; i++) {
    if (i < n && (p[i] != '/' || p[i - 1] == '/')) continue;
    char c = p[i];
    p[i] = 0;
    st = fs_mkdir1(p, path);
    p[i] = c;
  }
  free(p);
  return st;
}

static int fs_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

mg_status mg_listdir(const char *path, char **out, size_t *len, int *count) {
  *out = NULL;
  *len = 0;
  *count = 0;
  if (!path || !*path) return fs_empty("listdir");
  mg_status pst = mg_path_check("listdir", path, 0);
  if (pst) return pst;
  DIR *d = opendir(path);
  if (!d) return mg_seterror(MG_EIO, "listdir: cannot open directory '%s': %s", path, strerror(errno));
  char **names = NULL;
  size_t n = 0, cap = 0, bytes = 0;
  mg_status st = MG_OK;
  struct dirent *e;
  for (;;) {
    errno = 0;
    if (!(e = readdir(d))) {
      if (errno) st = mg_seterror(MG_EIO, "listdir: reading directory '%s' failed: %s", path, strerror(errno));
      break;
    }
    const char *nm = e->d_name;
    if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      char **g = realloc(names, cap * sizeof *g);
      if (!g) { st = mg_seterror(MG_ENOMEM, "listdir: out of memory listing '%s'", path); break; }
      names = g;
    }
    size_t l = strlen(nm) + 1;
    if (!(names[n] = malloc(l))) { st = mg_seterror(MG_ENOMEM, "listdir: out of memory listing '%s'", path); break; }
    memcpy(names[n++], nm, l);
    bytes += l;
  }
  closedir(d);
  if (st == MG_OK && n > (size_t)0x7fffffff) st = mg_seterror(MG_EIO, "listdir: '%s' has too many entries", path);
  char *buf = NULL;
  if (st == MG_OK && !(buf = malloc(bytes ? bytes : 1))) st = mg_seterror(MG_ENOMEM, "listdir: out of memory");
  if (st == MG_OK) {
    if (n > 1) qsort(names, n, sizeof *names, fs_cmp);  /* names is NULL when n == 0 */
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
      size_t l = strlen(names[i]) + 1;
      memcpy(buf + at, names[i], l);
      at += l;
    }
    *out = buf;
    *len = bytes;
    *count = (int)n;
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return st;
}

mg_status mg_remove(const char *path) {
  if (!path || !*path) return fs_empty("remove");
  mg_status pst = mg_path_check("remove", path, MG_PATH_NOFOLLOW);
  if (pst) return pst;
  if (remove(path) != 0) return mg_seterror(MG_EIO, "remove: cannot remove '%s': %s", path, strerror(errno));
  return MG_OK;
}

/* "a/b" from a and b (malloc'd; NULL on OOM): the path shown in messages. */
static char *fs_join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *p = malloc(la + lb + 2);
  if (!p) return NULL;
  memcpy(p, a, la);
  p[la] = '/';
  memcpy(p + la + 1, b, lb + 1);
  return p;
}

/* Removes everything in the directory open at dfd (shown as `shown`), which
 * it takes over and closes. Subdirectories are opened O_NOFOLLOW relative to
 * dfd, links are unlinked as links. */
static mg_status fs_empty_dir(int dfd, const char *shown) {
  DIR *d = fdopendir(dfd);
  if (!d) {
    mg_status st = mg_seterror(MG_EIO, "remove_tree: cannot read directory '%s': %s", shown, strerror(errno));
    close(dfd);
    return st;
  }
  mg_status st = MG_OK;
  struct dirent *e;
  for (;;) {
    errno = 0;
    if (!(e = readdir(d))) {
      if (errno) st = mg_seterror(MG_EIO, "remove_tree: reading directory '%s' failed: %s", shown, strerror(errno));
      break;
    }
    const char *nm = e->d_name;
    if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
    char *sub = fs_join(shown, nm);
    if (!sub) { st = mg_seterror(MG_ENOMEM, "remove_tree: out of memory"); break; }
    struct stat sb;
    if (fstatat(dirfd(d), nm, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT)  /* gone meanwhile: nothing to do */
        st = mg_seterror(MG_EIO, "remove_tree: cannot stat '%s': %s", sub, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
      int sfd = openat(dirfd(d), nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sfd < 0)
        st = mg_seterror(MG_EIO, "remove_tree: cannot open directory '%s': %s", sub, strerror(errno));
      else if ((st = fs_empty_dir(sfd, sub)) == MG_OK && unlinkat(dirfd(d), nm, AT_REMOVEDIR) != 0)
        st = mg_seterror(MG_EIO, "remove_tree: cannot remove directory '%s': %s", sub, strerror(errno));
    } else if (unlinkat(dirfd(d), nm, 0) != 0 && errno != ENOENT) {
      st = mg_seterror(MG_EIO, "remove_tree: cannot remove '%s': %s", sub, strerror(errno));
    }
    free(sub);
    if (st != MG_OK) break;
  }
  closedir(d);
  return st;
}

/* remove_tree of path without trailing slashes (a trailing slash would make
 * lstat and open follow a link named by the last component). */
static mg_status fs_remove_tree(const char *path, const char *shown) {
  struct stat sb;
  if (lstat(path, &sb) != 0)
    return mg_seterror(MG_EIO, "remove_tree: cannot remove '%s': %s", shown, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) {  /* a file, or a link (removed as a link, whatever it points to) */
    if (unlink(path) != 0) return mg_seterror(MG_EIO, "remove_tree: cannot remove '%s': %s", shown, strerror(errno));
    return MG_OK;
  }
  int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return mg_seterror(MG_EIO, "remove_tree: cannot open directory '%s': %s", shown, strerror(errno));
  mg_status st = fs_empty_dir(dfd, path);
  if (st != MG_OK) return st;
  if (rmdir(path) != 0)
    return mg_seterror(MG_EIO, "remove_tree: cannot remove directory '%s': %s", shown, strerror(errno));
  return MG_OK;
}

mg_status mg_remove_tree(const char *path) {
  if (!path || !*path) return fs_empty("remove_tree");
  mg_status pst = mg_path_check("remove_tree", path, MG_PATH_NOFOLLOW);
  if (pst) return pst;
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  const char *last = path + n;
  while (last > path && last[-1] != '/') last--;
  size_t ll = (size_t)(path + n - last);
  if (path[n - 1] == '/' || (ll == 1 && last[0] == '.') || (ll == 2 && last[0] == '.' && last[1] == '.'))
    return mg_seterror(MG_EARG, "remove_tree: refusing to remove '%s'", path);
  char *p = malloc(n + 1);
  if (!p) return mg_seterror(MG_ENOMEM, "remove_tree: out of memory");
  memcpy(p, path, n);
  p[n] = 0;
  mg_status st = fs_remove_tree(p, path);
  free(p);
  return st;
}

/* fsync of the directory holding path (best effort: some file systems refuse). */
static void fs_sync_parent(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash) {
    dir = malloc(2);
    if (dir) memcpy(dir, ".", 2);
  } else {
    size_t l = slash == path ? 1 : (size_t)(slash - path);
    dir = malloc(l + 1);
    if (dir) {
      memcpy(dir, path, l);
      dir[l] = 0;
    }
  }
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

mg_status mg_rename(const char *from, const char *to) {
  if (!from || !*from || !to || !*to) return fs_empty("rename");
  if (mg_path_check("rename", from, MG_PATH_NOFOLLOW) || mg_path_check("rename", to, MG_PATH_NOFOLLOW)) return MG_EARG;
  if (rename(from, to) != 0)
    return mg_seterror(MG_EIO, "rename: cannot rename '%s' to '%s': %s", from, to, strerror(errno));
  fs_sync_parent(to);
  fs_sync_parent(from);  /* its directory lost the name (often the same directory) */
  return MG_OK;
}

int64_t mg_process_id(void) { return (int64_t)getpid(); }

int mg_process_alive(int64_t pid) {
  if (pid <= 0 || pid != (int64_t)(pid_t)pid) return -1;
  if (kill((pid_t)pid, 0) == 0) return 1;
  return errno == ESRCH ? 0 : -1;  /* EPERM: alive, someone else's */
}

int mg_isatty(int fd) { return isatty(fd) == 1; }
