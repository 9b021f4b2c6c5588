/*
 * atomic_file.h — private to the engine: a file written whole or not at all.
 *
 * mg_afile_open creates a temp file beside the target, writes go to it, and
 * mg_afile_commit makes it the target with one rename (after fsync), so a
 * reader sees the old file or the new one, never a half-written mix; a crash
 * leaves at most a hidden temp file, which a later open of the same target
 * removes once its writer's process is gone. See core/atomic_file.c.
 */
#ifndef MG_ATOMIC_FILE_H
#define MG_ATOMIC_FILE_H

#include "mg.h"

typedef struct mg_afile mg_afile;

/* Starts writing `path` (the target is untouched until commit). `fname`
 * names the calling function in error messages. */
mg_status mg_afile_open(const char *path, const char *fname, mg_afile **out);
mg_status mg_afile_write(mg_afile *f, const void *p, size_t n);
/* fsync, rename over the target, fsync the directory. Frees f either way;
 * on failure the temp file is removed and the target left as it was. */
mg_status mg_afile_commit(mg_afile *f);
/* Drops the temp file and frees f (NULL is a no-op). */
void mg_afile_abort(mg_afile *f);

/* Reads the whole file at path into a malloc'd buffer (free it). */
mg_status mg_afile_read(const char *path, const char *fname, uint8_t **out, size_t *len);

#endif
