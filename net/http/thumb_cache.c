/* The thumbnail service's response cache: least recently used first out,
 * bounded in bytes (keys, data and the entries themselves counted), a
 * chained hash table over an intrusive LRU list.  The seed's "space for
 * time": a repeated request costs a lookup, no image work.  Loop thread
 * only, so no locks. */
#include <stdlib.h>
#include <string.h>

#include "net/http/thumb.h"

typedef struct entry_s {
  struct entry_s *next_in_bucket;
  eddy_queue_t lru; /* head: most recently used */
  uint64_t hash;
  unsigned char *data;
  size_t len;
  eddy_image_format fmt;
  char key[]; /* NUL-terminated */
} entry_t;

struct eddy__thumb_cache_s {
  entry_t **buckets;
  size_t nbuckets; /* a power of two */
  size_t entries;
  size_t bytes;
  size_t max_bytes;
  eddy_queue_t lru;
};

static size_t entry_cost(const entry_t *e) {
  return sizeof *e + strlen(e->key) + 1 + e->len;
}

eddy__thumb_cache_t *eddy__thumb_cache_new(size_t max_bytes) {
  eddy__thumb_cache_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->nbuckets = 1024;
  c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
  if (c->buckets == NULL) {
    free(c);
    return NULL;
  }
  c->max_bytes = max_bytes;
  eddy__queue_init(&c->lru);
  return c;
}

void eddy__thumb_cache_free(eddy__thumb_cache_t *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->nbuckets; i++) {
    for (entry_t *e = c->buckets[i], *next; e != NULL; e = next) {
      next = e->next_in_bucket;
      free(e->data);
      free(e);
    }
  }
  free(c->buckets);
  free(c);
}

static uint64_t key_hash(const char *key) {
  return eddy__fnv1a(EDDY__FNV_INIT, key, strlen(key));
}

static entry_t **find_slot(eddy__thumb_cache_t *c, const char *key,
                           uint64_t h) {
  entry_t **slot = &c->buckets[h & (c->nbuckets - 1)];
  while (*slot != NULL &&
         ((*slot)->hash != h || strcmp((*slot)->key, key) != 0))
    slot = &(*slot)->next_in_bucket;
  return slot;
}

int eddy__thumb_cache_get(eddy__thumb_cache_t *c, const char *key,
                          eddy__thumb_hit_t *hit) {
  entry_t *e = *find_slot(c, key, key_hash(key));
  if (e == NULL)
    return 0;
  eddy__queue_remove(&e->lru);
  eddy__queue_insert_head(&c->lru, &e->lru);
  hit->data = e->data;
  hit->len = e->len;
  hit->fmt = e->fmt;
  return 1;
}

static void evict(eddy__thumb_cache_t *c, entry_t *e) {
  entry_t **slot = find_slot(c, e->key, e->hash);
  *slot = e->next_in_bucket;
  eddy__queue_remove(&e->lru);
  c->bytes -= entry_cost(e);
  c->entries--;
  free(e->data);
  free(e);
}

/* Doubles the table when it holds more entries than buckets. */
static void maybe_grow(eddy__thumb_cache_t *c) {
  if (c->entries < c->nbuckets)
    return;
  size_t n = c->nbuckets * 2;
  entry_t **b = calloc(n, sizeof *b);
  if (b == NULL)
    return; /* longer chains, still correct */
  for (size_t i = 0; i < c->nbuckets; i++) {
    for (entry_t *e = c->buckets[i], *next; e != NULL; e = next) {
      next = e->next_in_bucket;
      e->next_in_bucket = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
    }
  }
  free(c->buckets);
  c->buckets = b;
  c->nbuckets = n;
}

int eddy__thumb_cache_put(eddy__thumb_cache_t *c, const char *key,
                          unsigned char *data, size_t len,
                          eddy_image_format fmt) {
  size_t klen = strlen(key);
  /* One entry may take at most an eighth of the cache, so a few big
   * results cannot flush all the small ones. */
  if (c->max_bytes == 0 || sizeof(entry_t) + klen + 1 + len > c->max_bytes / 8)
    return 0;
  uint64_t h = key_hash(key);
  entry_t *old = *find_slot(c, key, h);
  if (old != NULL)
    evict(c, old); /* the same request finished twice: keep the newer */
  entry_t *e = malloc(sizeof *e + klen + 1);
  if (e == NULL)
    return 0;
  memcpy(e->key, key, klen + 1);
  e->hash = h;
  e->data = data;
  e->len = len;
  e->fmt = fmt;
  while (c->bytes + entry_cost(e) > c->max_bytes && !eddy__queue_empty(&c->lru))
    evict(c, eddy__container_of(c->lru.prev, entry_t, lru)); /* the tail */
  entry_t **slot = &c->buckets[h & (c->nbuckets - 1)];
  e->next_in_bucket = *slot;
  *slot = e;
  eddy__queue_insert_head(&c->lru, &e->lru);
  c->bytes += entry_cost(e);
  c->entries++;
  maybe_grow(c);
  return 1;
}

void eddy__thumb_cache_usage(const eddy__thumb_cache_t *c, size_t *entries,
                             size_t *bytes) {
  *entries = c != NULL ? c->entries : 0;
  *bytes = c != NULL ? c->bytes : 0;
}
