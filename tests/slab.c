/* The buffer slab pool and eddy_memory_usage. */
#include <stdint.h>
#include <string.h>

#include "helpers.h"

static eddy_memory_usage_t usage(eddy_loop_t *loop) {
  eddy_memory_usage_t u;
  int rc = eddy_memory_usage(loop, &u);
  cr_assert(eq(int, rc, 0), "eddy_memory_usage: %s", eddy_err_name(rc));
  return u;
}

static eddy_slice_t alloc(eddy_loop_t *loop, size_t len) {
  eddy_slice_t s;
  int rc = eddy_slice_alloc(loop, len, &s);
  cr_assert(eq(int, rc, 0), "eddy_slice_alloc(%zu): %s", len,
            eddy_err_name(rc));
  cr_assert(ne(ptr, s.base, NULL));
  cr_assert(eq(sz, s.len, len));
  memset(s.base, 0xab, len); /* the memory is ours: sanitizers check */
  return s;
}

Test(slab, buf_init_keeps_base_and_len) {
  char mem[4];
  eddy_buf_t b = eddy_buf_init(mem, sizeof(mem));
  cr_assert(eq(ptr, b.base, mem));
  cr_assert(eq(sz, b.len, sizeof(mem)));
}

EDDY_IO_TEST(slab, small_slices_share_a_slab) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_slice_t a = alloc(&loop, 100);
  eddy_slice_t b = alloc(&loop, 100);
  /* Adjacent: b starts at a's length rounded up to 16. */
  cr_assert(eq(ptr, b.base, a.base + 112));
  cr_assert(eq(ptr, a.owner, b.owner));
  eddy_slice_release(&a);
  eddy_slice_release(&b);
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(slab, slices_are_16_byte_aligned) {
  eddy_loop_t loop;
  static const size_t lens[] = {1, 3, 15, 16, 17, 33, 4095, 4096, 4097, 9999};
  eddy_slice_t s[sizeof(lens) / sizeof(lens[0])];
  eddy_test_loop_init(&loop, *backend);
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    s[i] = alloc(&loop, lens[i]);
    cr_assert(eq(u64, (uintptr_t)s[i].base % 16, 0), "len %zu", lens[i]);
  }
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
    eddy_slice_release(&s[i]);
  cr_assert(eq(sz, usage(&loop).slab_used, 0));
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(slab, slices_fill_a_slab_then_take_a_new_one) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_slice_t a = alloc(&loop, EDDY_SLAB_MAX_SLICE);
  eddy_slice_t b = alloc(&loop, EDDY_SLAB_MAX_SLICE);
  cr_assert(eq(ptr, b.base, a.base + EDDY_SLAB_MAX_SLICE));
  eddy_slice_t c = alloc(&loop, 1);
  cr_assert(ne(ptr, c.owner, a.owner));
  cr_assert(eq(sz, loop.slab.slab_bytes, 2 * EDDY_SLAB_SIZE));
  cr_assert(eq(sz, usage(&loop).slab_used, EDDY_SLAB_SIZE + 16));
  eddy_slice_release(&a);
  eddy_slice_release(&b);
  eddy_slice_release(&c);
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(slab, released_slab_memory_is_reused) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  /* The current slab rewinds when its last slice goes. */
  eddy_slice_t a = alloc(&loop, 300);
  char *first = a.base;
  eddy_slice_release(&a);
  eddy_slice_t b = alloc(&loop, 50);
  cr_assert(eq(ptr, b.base, first));
  eddy_slice_release(&b);

  /* A full slab, once empty, comes back from the free list. */
  eddy_slice_t s1 = alloc(&loop, EDDY_SLAB_MAX_SLICE);
  eddy_slice_t s2 = alloc(&loop, EDDY_SLAB_MAX_SLICE);
  eddy_slice_t s3 = alloc(&loop, EDDY_SLAB_MAX_SLICE); /* second slab */
  eddy_slice_release(&s1);
  eddy_slice_release(&s2);
  cr_assert(eq(sz, loop.slab.nfree, 1));
  eddy_slice_t s4 = alloc(&loop, EDDY_SLAB_MAX_SLICE); /* fills the second */
  eddy_slice_t s5 = alloc(&loop, 1);                   /* third: reused */
  cr_assert(eq(ptr, s5.base, first));
  cr_assert(eq(sz, loop.slab.nfree, 0));
  cr_assert(eq(sz, loop.slab.slab_bytes, 2 * EDDY_SLAB_SIZE));
  eddy_slice_release(&s3);
  eddy_slice_release(&s4);
  eddy_slice_release(&s5);
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(slab, slab_is_free_only_after_last_slice_released) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_slice_t a = alloc(&loop, EDDY_SLAB_MAX_SLICE);
  eddy_slice_t b = alloc(&loop, 100);
  eddy_slice_t c = alloc(&loop, EDDY_SLAB_MAX_SLICE); /* a new current slab */
  cr_assert(ne(ptr, c.owner, a.owner));
  eddy_memory_usage_t u0 = usage(&loop);
  cr_assert(
      eq(sz, u0.slab_used, EDDY_SLAB_MAX_SLICE + 112 + EDDY_SLAB_MAX_SLICE));
  /* Free: the rest of the current slab. */
  cr_assert(eq(sz, u0.slab_free, EDDY_SLAB_SIZE - EDDY_SLAB_MAX_SLICE));

  /* Releasing one of the first slab's slices frees nothing yet. */
  eddy_slice_release(&a);
  eddy_memory_usage_t u1 = usage(&loop);
  cr_assert(eq(sz, u1.slab_used, u0.slab_used));
  cr_assert(eq(sz, u1.slab_free, u0.slab_free));

  /* A retained slice keeps the slab until released once more. */
  eddy_slice_retain(&b);
  eddy_slice_release(&b);
  eddy_memory_usage_t u2 = usage(&loop);
  cr_assert(eq(sz, u2.slab_used, u0.slab_used));
  cr_assert(eq(sz, u2.slab_free, u0.slab_free));

  /* The last release gives the whole slab back. */
  eddy_slice_release(&b);
  eddy_memory_usage_t u3 = usage(&loop);
  cr_assert(eq(sz, u3.slab_used, EDDY_SLAB_MAX_SLICE));
  cr_assert(eq(sz, u3.slab_free, u0.slab_free + EDDY_SLAB_SIZE));

  eddy_slice_release(&c);
  eddy_memory_usage_t u4 = usage(&loop);
  cr_assert(eq(sz, u4.slab_used, 0));
  cr_assert(eq(sz, u4.slab_free, 2 * EDDY_SLAB_SIZE));
  cr_assert(eq(sz, loop.slab.slab_bytes, 2 * EDDY_SLAB_SIZE));
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(slab, free_list_is_bounded) {
  eddy_loop_t loop;
  eddy_slice_t s[20];
  eddy_test_loop_init(&loop, *backend);
  /* Two maximal slices fill a slab: ten slabs. */
  for (size_t i = 0; i < 20; i++)
    s[i] = alloc(&loop, EDDY_SLAB_MAX_SLICE);
  cr_assert(eq(sz, loop.slab.slab_bytes, 10 * EDDY_SLAB_SIZE));
  for (size_t i = 0; i < 20; i++)
    eddy_slice_release(&s[i]);
  /* A few free slabs stay, plus the current one; the rest were freed. */
  cr_assert(eq(sz, loop.slab.nfree, 4));
  cr_assert(
      eq(sz, loop.slab.slab_bytes, (loop.slab.nfree + 1) * EDDY_SLAB_SIZE));
  eddy_memory_usage_t u = usage(&loop);
  cr_assert(eq(sz, u.slab_used, 0));
  cr_assert(eq(sz, u.slab_free, loop.slab.slab_bytes));
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(slab, large_slice_is_separate_and_counted) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_slice_t small = alloc(&loop, 10);
  size_t slab_bytes = loop.slab.slab_bytes;
  eddy_slice_t big = alloc(&loop, 100 * 1024);
  cr_assert(ne(ptr, big.owner, small.owner));
  cr_assert(eq(sz, loop.slab.slab_bytes, slab_bytes));
  cr_assert(eq(sz, usage(&loop).slab_used, 16 + 100 * 1024));
  eddy_slice_retain(&big);
  eddy_slice_release(&big);
  cr_assert(eq(sz, usage(&loop).slab_used, 16 + 100 * 1024));
  eddy_slice_release(&big);
  cr_assert(eq(sz, usage(&loop).slab_used, 16));
  eddy_slice_release(&small);
  cr_assert(eq(sz, usage(&loop).slab_used, 0));
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(slab, zero_length_is_einval) {
  eddy_loop_t loop;
  eddy_slice_t s;
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(int, eddy_slice_alloc(&loop, 0, &s), EDDY_EINVAL));
  cr_assert(eq(ptr, s.base, NULL));
  cr_assert(eq(ptr, s.owner, NULL));
  eddy_slice_release(&s); /* a failed slice releases as a no-op */
  cr_assert(eq(int, eddy_slice_alloc(NULL, 1, &s), EDDY_EINVAL));
  cr_assert(eq(int, eddy_slice_alloc(&loop, 1, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_slice_alloc(&loop, SIZE_MAX, &s), EDDY_ENOMEM));
  cr_assert(eq(sz, usage(&loop).slab_used, 0));
  eddy_test_loop_close(&loop);
}

/* Slices may outlive their loop: the last release frees the memory. */
EDDY_IO_TEST(slab, slices_outlive_the_loop) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_slice_t a = alloc(&loop, 100);
  eddy_slice_t b = alloc(&loop, 50000);
  eddy_slice_t c = alloc(&loop, EDDY_SLAB_MAX_SLICE);
  eddy_slice_t d = alloc(&loop, EDDY_SLAB_MAX_SLICE); /* a second slab */
  eddy_slice_release(&c);
  eddy_test_loop_close(&loop);
  memset(&loop, 0x5a, sizeof(loop)); /* the loop's memory is gone */
  memset(a.base, 1, a.len);
  memset(b.base, 1, b.len);
  eddy_slice_retain(&a);
  eddy_slice_release(&a);
  eddy_slice_release(&a);
  eddy_slice_release(&b);
  eddy_slice_release(&d);
}

EDDY_IO_TEST(slab, memory_usage_reports_rss) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_memory_usage_t u = usage(&loop);
  cr_assert(gt(sz, u.rss, 0));
  cr_assert(eq(sz, u.slab_used, 0));
  cr_assert(eq(int, eddy_memory_usage(&loop, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_memory_usage(NULL, &u), EDDY_EINVAL));
  eddy_test_loop_close(&loop);
}

static void nop_work(eddy_work_t *req) {}

static void after_nop_work(eddy_work_t *req, int status) {
  cr_assert(eq(int, status, 0));
  *(int *)req->data = 1;
}

EDDY_IO_TEST(slab, memory_usage_reports_pool_threads) {
  eddy_loop_t loop;
  eddy_work_t req;
  int done = 0;
  eddy_test_loop_init(&loop, *backend);
  req.data = &done;
  cr_assert(
      eq(int,
         eddy_queue_work(&loop, &req, EDDY_WORK_FAST, nop_work, after_nop_work),
         0));
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_DEFAULT), 0));
  cr_assert(eq(int, done, 1));
  eddy_memory_usage_t u = usage(&loop);
  /* Threads start lazily; at least the one that ran the work is up. */
  cr_assert(gt(sz, u.pool_threads, 0));
  cr_assert(le(sz, u.pool_threads, eddy_threadpool_size()));
  cr_assert(eq(sz, u.pool_queued, 0));
  eddy_test_loop_close(&loop);
}
