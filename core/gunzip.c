/*
 * gunzip.c — mg_read_file_gunzip: a gzip file's contents, decompressed in
 * process with zlib (the IDX data sets ship as .gz files; this replaced a
 * `gzip -dc` subprocess, which a host without a shell or a sandboxed runtime
 * cannot run).
 *
 * The compressed file is read whole through mg_afile_read (the file-access
 * policy and the regular-file check apply), then inflated into a buffer that
 * doubles as it fills. Concatenated gzip members (what `cat a.gz b.gz` makes,
 * and gzip itself reads as one stream) are decompressed one after another;
 * bytes that are not gzip are an error naming the file, as is a truncated
 * stream.
 */
#include "atomic_file.h"
#include "internal.h"
#include <stdlib.h>
#include <zlib.h>

/* Inflates one or more gzip members of in[0..n) into *out (malloc'd). */
static mg_status gunzip_buffer(const char *path, const uint8_t *in, size_t n, uint8_t **out, size_t *len) {
  size_t cap = n * 4 + 4096, got = 0, used = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) return mg_seterror(MG_ENOMEM, "read_file_gunzip: out of memory reading '%s'", path);
  mg_status st = MG_OK;
  while (used < n && !st) {
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {  /* 16: gzip framing only */
      st = mg_seterror(MG_ENOMEM, "read_file_gunzip: zlib could not start for '%s'", path);
      break;
    }
    z.next_in = (Bytef *)(in + used);
    int zr = Z_OK;
    size_t left = n - used;
    while (zr != Z_STREAM_END) {
      if (got == cap) {
        size_t ncap = cap * 2;
        uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;
        if (!nb) {
          st = mg_seterror(MG_ENOMEM, "read_file_gunzip: out of memory decompressing '%s' (%zu bytes so far)", path, got);
          break;
        }
        buf = nb;
        cap = ncap;
      }
      uInt in_chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
      uInt out_chunk = cap - got > (1u << 30) ? (1u << 30) : (uInt)(cap - got);
      z.avail_in = in_chunk;
      z.next_out = buf + got;
      z.avail_out = out_chunk;
      zr = inflate(&z, Z_NO_FLUSH);
      got += out_chunk - z.avail_out;
      left -= in_chunk - z.avail_in;
      if (zr == Z_STREAM_END) break;
      if (zr == Z_BUF_ERROR && z.avail_out > 0) zr = Z_DATA_ERROR;  /* no progress with room to write: truncated */
      if (zr != Z_OK && zr != Z_BUF_ERROR) {
        st = mg_seterror(MG_EIO, "read_file_gunzip: '%s' is not a valid gzip file (%s, at compressed byte %zu)",
                         path, zr == Z_DATA_ERROR && left == 0 ? "it ends too early" : z.msg ? z.msg : "corrupt data",
                         used + (size_t)z.total_in);
        break;
      }
    }
    used += (size_t)z.total_in;
    inflateEnd(&z);
    while (used < n && in[used] == 0) used++;  /* zero padding after a member, as gzip allows */
  }
  if (st) {
    free(buf);
    return st;
  }
  *out = buf;
  *len = got;
  return MG_OK;
}

mg_status mg_read_file_gunzip(const char *path, uint8_t **out, size_t *len) {
  uint8_t *raw;
  size_t n;
  *out = NULL;
  *len = 0;
  mg_status st = mg_afile_read(path, "read_file_gunzip", &raw, &n);
  if (st) return st;
  if (n < 2 || raw[0] != 0x1f || raw[1] != 0x8b) {
    free(raw);
    return mg_seterror(MG_EIO, "read_file_gunzip: '%s' is not a gzip file (no gzip header)", path);
  }
  st = gunzip_buffer(path, raw, n, out, len);
  free(raw);
  return st;
}
