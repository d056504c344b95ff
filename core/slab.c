/* The buffer slab pool: Node's Buffer pool, one per loop, no locks.
 *
 * A slice of 1..EDDY_SLAB_MAX_SLICE bytes is carved, 16-byte aligned, from
 * the pool's current 8 KB slab; a bigger one gets a block of its own.  Both
 * kinds of block begin with the same header and are refcounted: each slice
 * holds one reference on its block, and so does each eddy_slice_retain().
 *
 * A slab's carved bytes are not reused piecemeal (Node does not either):
 * they come back all at once when the slab's last reference goes.  Then the
 * current slab rewinds to its start, and any other slab goes back to the
 * free list, of which at most EDDY__SLAB_KEEP_FREE are kept; the rest are
 * freed.
 *
 * Accounting (pool->used_bytes, pool->slab_bytes):
 *  - used_bytes: bytes pinned by live slices.  For a slab that is the bytes
 *    carved from it (lengths rounded up to 16) until its last reference
 *    goes, because none of them can be reused before then; for a large
 *    block its length.
 *  - slab_bytes: EDDY_SLAB_SIZE for every slab the pool owns (current,
 *    holding slices, or free).  Large blocks are not slabs and not counted.
 *
 * Every block other than the current slab is linked in pool->free: the free
 * slabs first (nfree of them), then the slabs and large blocks that hold
 * live slices.  The live ones are listed only so that eddy__slab_loop_close
 * can find them: a loop may close while slices are alive (a read buffer a
 * user kept, say).  Such blocks are orphaned: their pool pointer becomes
 * NULL, and the last release frees them without touching the loop, whose
 * memory may be gone by then.
 */
#include <stdlib.h>

#include "internal.h"

#define EDDY__SLAB_ALIGN 16
#define EDDY__SLAB_KEEP_FREE 4
#define EDDY__READ_BLOCKS_KEEP 4

struct eddy__slab_s {
  eddy__slab_pool_t *pool; /* NULL once the loop closed: orphaned */
  eddy_queue_t node;       /* in pool->free unless current or orphaned */
  size_t refs;             /* live slices plus retains */
  size_t bytes;            /* data bytes: EDDY_SLAB_SIZE, or the large length */
  size_t carved;           /* slab: bytes handed out since it was last empty */
  int large;
  /* A block a backend lends out (an io_uring provided buffer): when its last
   * reference goes it is handed back instead of being freed. */
  void (*recycle)(struct eddy__slab_s *b, void *ctx, unsigned id);
  void *ctx;
  unsigned id;
};

/* The data follows the header at a 16-byte boundary. */
#define EDDY__SLAB_HDR                                                         \
  ((sizeof(struct eddy__slab_s) + EDDY__SLAB_ALIGN - 1) &                      \
   ~(size_t)(EDDY__SLAB_ALIGN - 1))

static inline char *eddy__slab_data(struct eddy__slab_s *b) {
  return (char *)b + EDDY__SLAB_HDR;
}

static inline size_t eddy__slab_round(size_t len) {
  return (len + EDDY__SLAB_ALIGN - 1) & ~(size_t)(EDDY__SLAB_ALIGN - 1);
}

/* A block of header + bytes, or NULL. */
static struct eddy__slab_s *eddy__block_new(eddy__slab_pool_t *pool,
                                            size_t bytes, int large) {
  if (bytes > SIZE_MAX - EDDY__SLAB_HDR - EDDY__SLAB_ALIGN)
    return NULL;
  struct eddy__slab_s *b =
      aligned_alloc(EDDY__SLAB_ALIGN, eddy__slab_round(EDDY__SLAB_HDR + bytes));
  if (b == NULL)
    return NULL;
  b->pool = pool;
  eddy__queue_init(&b->node);
  b->refs = 0;
  b->bytes = bytes;
  b->carved = 0;
  b->large = large;
  b->recycle = NULL;
  b->ctx = NULL;
  b->id = 0;
  return b;
}

eddy_buf_t eddy_buf_init(char *base, size_t len) {
  eddy_buf_t buf = {base, len};
  return buf;
}

void eddy__slab_loop_init(eddy_loop_t *loop) {
  eddy__slab_pool_t *pool = &loop->slab;
  pool->current = NULL;
  eddy__queue_init(&pool->free);
  pool->nfree = 0;
  eddy__queue_init(&pool->read_free);
  pool->nread_free = 0;
  pool->used_bytes = 0;
  pool->slab_bytes = 0;
}

/* Frees a block nobody references, or orphans one that live slices still
 * point into. */
static void eddy__block_drop(struct eddy__slab_s *b) {
  eddy__queue_remove(&b->node);
  if (b->refs == 0)
    free(b);
  else
    b->pool = NULL;
}

void eddy__slab_loop_close(eddy_loop_t *loop) {
  eddy__slab_pool_t *pool = &loop->slab;
  if (pool->current != NULL)
    eddy__block_drop(pool->current);
  while (!eddy__queue_empty(&pool->free))
    eddy__block_drop(eddy__container_of(eddy__queue_head(&pool->free),
                                        struct eddy__slab_s, node));
  while (!eddy__queue_empty(&pool->read_free))
    eddy__block_drop(eddy__container_of(eddy__queue_head(&pool->read_free),
                                        struct eddy__slab_s, node));
  eddy__slab_loop_init(loop);
}

/* Makes a fresh slab current: a free one if there is one, else a new one.
 * The old current slab, which holds slices (an empty current slab has room
 * for any small slice), joins the list of live blocks. */
static int eddy__slab_next(eddy__slab_pool_t *pool) {
  struct eddy__slab_s *b;
  if (pool->nfree > 0) {
    b = eddy__container_of(eddy__queue_head(&pool->free), struct eddy__slab_s,
                           node);
    eddy__queue_remove(&b->node);
    pool->nfree--;
  } else {
    b = eddy__block_new(pool, EDDY_SLAB_SIZE, 0);
    if (b == NULL)
      return EDDY_ENOMEM;
    pool->slab_bytes += EDDY_SLAB_SIZE;
  }
  if (pool->current != NULL) {
    assert(pool->current->refs > 0);
    eddy__queue_insert_tail(&pool->free, &pool->current->node);
  }
  pool->current = b;
  return 0;
}

static int eddy__slice_alloc_large(eddy__slab_pool_t *pool, size_t len,
                                   eddy_slice_t *out) {
  struct eddy__slab_s *b = eddy__block_new(pool, len, 1);
  if (b == NULL)
    return EDDY_ENOMEM;
  b->refs = 1;
  eddy__queue_insert_tail(&pool->free, &b->node);
  pool->used_bytes += len;
  out->base = eddy__slab_data(b);
  out->len = len;
  out->owner = b;
  return 0;
}

int eddy_slice_alloc(eddy_loop_t *loop, size_t len, eddy_slice_t *out) {
  if (out == NULL)
    return EDDY_EINVAL;
  out->base = NULL;
  out->len = 0;
  out->owner = NULL;
  if (loop == NULL || len == 0)
    return EDDY_EINVAL;

  eddy__slab_pool_t *pool = &loop->slab;
  if (len > EDDY_SLAB_MAX_SLICE)
    return eddy__slice_alloc_large(pool, len, out);

  size_t need = eddy__slab_round(len);
  struct eddy__slab_s *b = pool->current;
  if (b == NULL || b->bytes - b->carved < need) {
    int rc = eddy__slab_next(pool);
    if (rc != 0)
      return rc;
    b = pool->current;
  }
  out->base = eddy__slab_data(b) + b->carved;
  out->len = len;
  out->owner = b;
  b->carved += need;
  b->refs++;
  pool->used_bytes += need;
  return 0;
}

/* Reads land in 64 KB blocks that go back to a small cache when the read
 * callback returns and nothing retained them, so a busy connection reuses
 * the same block and an idle one holds none. */
int eddy__read_block(eddy_loop_t *loop, eddy_slice_t *out) {
  eddy__slab_pool_t *pool = &loop->slab;
  if (pool->nread_free == 0)
    return eddy__slice_alloc_large(pool, EDDY__READ_BLOCK, out);
  struct eddy__slab_s *b = eddy__container_of(
      eddy__queue_head(&pool->read_free), struct eddy__slab_s, node);
  eddy__queue_remove(&b->node);
  pool->nread_free--;
  b->refs = 1;
  eddy__queue_insert_tail(&pool->free, &b->node);
  pool->used_bytes += b->bytes;
  out->base = eddy__slab_data(b);
  out->len = b->bytes;
  out->owner = b;
  return 0;
}

void eddy_slice_retain(eddy_slice_t *s) {
  if (s == NULL || s->owner == NULL)
    return;
  struct eddy__slab_s *b = s->owner;
  assert(b->refs > 0);
  b->refs++;
}

/* The last reference of a block went: give its bytes back. */
static void eddy__block_empty(struct eddy__slab_s *b) {
  if (b->recycle != NULL) {
    b->recycle(b, b->ctx, b->id);
    return;
  }
  eddy__slab_pool_t *pool = b->pool;
  if (pool == NULL) { /* orphaned by eddy__slab_loop_close */
    free(b);
    return;
  }
  if (b->large) {
    pool->used_bytes -= b->bytes;
    eddy__queue_remove(&b->node);
    if (b->bytes == EDDY__READ_BLOCK &&
        pool->nread_free < EDDY__READ_BLOCKS_KEEP) {
      eddy__queue_insert_head(&pool->read_free, &b->node);
      pool->nread_free++;
      return;
    }
    free(b);
    return;
  }
  pool->used_bytes -= b->carved;
  b->carved = 0;
  if (b == pool->current)
    return; /* rewound: the next slice starts at its front again */
  eddy__queue_remove(&b->node);
  if (pool->nfree < EDDY__SLAB_KEEP_FREE) {
    eddy__queue_insert_head(&pool->free, &b->node);
    pool->nfree++;
  } else {
    pool->slab_bytes -= EDDY_SLAB_SIZE;
    free(b);
  }
}

/* Does not change *s: a retained slice is released through the same
 * struct once per retain, plus once. */
void eddy_slice_release(eddy_slice_t *s) {
  if (s == NULL || s->owner == NULL)
    return;
  struct eddy__slab_s *b = s->owner;
  assert(b->refs > 0);
  if (--b->refs == 0)
    eddy__block_empty(b);
}

/* For eddy_memory_usage: bytes of free slabs and cached read blocks, plus
 * the room left in the current slab. */
size_t eddy__slab_free_bytes(const eddy_loop_t *loop) {
  const eddy__slab_pool_t *pool = &loop->slab;
  size_t n = pool->nfree * EDDY_SLAB_SIZE + pool->nread_free * EDDY__READ_BLOCK;
  if (pool->current != NULL)
    n += pool->current->bytes - pool->current->carved;
  return n;
}

/* ---- Blocks a backend lends out ------------------------------------------ */

struct eddy__slab_s *eddy__lent_block_new(size_t bytes,
                                          eddy__recycle_fn recycle, void *ctx,
                                          unsigned id) {
  struct eddy__slab_s *b = eddy__block_new(NULL, bytes, 1);
  if (b == NULL)
    return NULL;
  b->recycle = recycle;
  b->ctx = ctx;
  b->id = id;
  return b;
}

char *eddy__lent_block_data(struct eddy__slab_s *b) {
  return eddy__slab_data(b);
}

void eddy__lent_block_slice(struct eddy__slab_s *b, size_t len,
                            eddy_slice_t *out) {
  b->refs = 1;
  out->base = eddy__slab_data(b);
  out->len = len;
  out->owner = b;
}

size_t eddy__lent_block_refs(const struct eddy__slab_s *b) {
  return b->refs;
}

/* The lender lets go of the block (goes away, or replaced it): a block
 * nobody holds is freed now, one a slice still holds is freed by its last
 * release. */
void eddy__lent_block_free(struct eddy__slab_s *b) {
  b->recycle = NULL;
  b->pool = NULL;
  if (b->refs == 0)
    free(b);
}
