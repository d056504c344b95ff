/* The thumbnail service's LRU response cache (net/http/thumb_cache.c),
 * used by net/http/thumb.c. */
#ifndef EDDY_HTTP_THUMB_H
#define EDDY_HTTP_THUMB_H

#include "core/internal.h"

/* FNV-1a, 64 bits: the cache keys and posted bodies. */
static inline uint64_t eddy__fnv1a(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
#define EDDY__FNV_INIT 0xcbf29ce484222325ULL

/* The LRU response cache of the thumbnail service (net/http/thumb_cache.c).
 * Loop thread only. */
typedef struct eddy__thumb_cache_s eddy__thumb_cache_t;
typedef struct {
  const unsigned char *data;
  size_t len;
  eddy_image_format fmt;
} eddy__thumb_hit_t;

eddy__thumb_cache_t *eddy__thumb_cache_new(size_t max_bytes);
void eddy__thumb_cache_free(eddy__thumb_cache_t *c);
/* 1 and *hit (valid until the next put) if key is cached, which also makes
 * it the most recent; else 0. */
int eddy__thumb_cache_get(eddy__thumb_cache_t *c, const char *key,
                          eddy__thumb_hit_t *hit);
/* Takes data (malloc) on success (returns 1); returns 0 and leaves data
 * to the caller when it is too big to cache or memory is short. */
int eddy__thumb_cache_put(eddy__thumb_cache_t *c, const char *key,
                          unsigned char *data, size_t len,
                          eddy_image_format fmt);
void eddy__thumb_cache_usage(const eddy__thumb_cache_t *c, size_t *entries,
                             size_t *bytes);

#endif
