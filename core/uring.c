/* The io_uring backend: completion-native.
 *
 * Streams use multishot accept, multishot receive into a provided-buffer
 * ring, sendmsg from the write queue and connect (core/uring_stream.c); the
 * descriptors that stay fd-based (eventfds, the signalfd, poll handles) use
 * poll requests: multishot for edge-triggered watchers, one-shot re-armed
 * after each completion for level-triggered ones.  Submissions queue up
 * while callbacks run and go to the kernel with the wait: one
 * io_uring_enter per iteration when there is work.  The ring is
 * SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them, COOP_TASKRUN
 * otherwise, and never SQPOLL. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uring.h"

#define U_ENTRIES 1024
#define U_CQ_ENTRIES 8192
#define U_NBUFS 256
#define U_BUF_SIZE (16 * 1024)
#define U_BATCH 256

/* With EDDY_URING_MIN_WAIT=<µs> set, a blocking wait returns once
 * U_WAIT_BATCH completions are in, or after that minimum if at least one
 * is (see u_submit_and_wait_batch).  Off by default. */
#define U_WAIT_BATCH 16

/* Kernel 6.12's feature bit; liburing 2.3's headers predate it (and call
 * the field it gives a meaning, io_uring_getevents_arg.min_wait_usec,
 * `pad`). */
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif

/* ---- Setup -----------------------------------------------------------------
 */

/* EDDY_URING_FAIL=1 makes setup fail as a kernel that refuses io_uring
 * would (EPERM), so the fallback to epoll can be tested anywhere. */
static int u_setup(struct io_uring *ring, unsigned entries) {
  const char *fail = getenv("EDDY_URING_FAIL");
  if (fail != NULL && strcmp(fail, "1") == 0)
    return -EPERM;
  static const unsigned tries[] = {IORING_SETUP_SINGLE_ISSUER |
                                       IORING_SETUP_DEFER_TASKRUN,
                                   IORING_SETUP_COOP_TASKRUN, 0};
  int err = -ENOSYS;
  for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = tries[i] | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
    p.cq_entries = entries == U_ENTRIES ? U_CQ_ENTRIES : entries * 2;
    err = io_uring_queue_init_params(entries, ring, &p);
    if (err == 0) {
      if (!(p.features & IORING_FEAT_NODROP)) {
        /* Completions could be lost on overflow: not a ring to use. */
        io_uring_queue_exit(ring);
        return -ENOSYS;
      }
      return 0;
    }
    if (err != -EINVAL)
      break; /* EPERM, ENOSYS, ENOMEM: no flag choice changes that */
  }
  return err;
}

int eddy__uring_probe(void) {
  struct io_uring ring;
  int err = u_setup(&ring, 8);
  if (err == 0)
    io_uring_queue_exit(&ring);
  return err;
}

void eddy__u_recycle(struct eddy__slab_s *b, void *ctx, unsigned id) {
  eddy__u_put_buffer(ctx, id);
}

void eddy__u_put_buffer(eddy_loop_t *loop, unsigned bid) {
  ubackend_t *ub = u_backend(loop);
  io_uring_buf_ring_add(ub->br, eddy__lent_block_data(ub->bufs[bid]),
                        ub->buf_size, (unsigned short)bid,
                        io_uring_buf_ring_mask(ub->nbufs), 0);
  io_uring_buf_ring_advance(ub->br, 1);
}

/* The provided-buffer ring, registered by hand (liburing 2.3 has no
 * io_uring_setup_buf_ring).  Each buffer is a lent slab block, so a read
 * callback may retain it like any slice; it returns to the ring when the
 * last reference goes. */
static int u_buffers_init(eddy_loop_t *loop, ubackend_t *ub) {
  ub->nbufs = U_NBUFS;
  ub->buf_size = U_BUF_SIZE;
  ub->br_bytes = ub->nbufs * sizeof(struct io_uring_buf);
  void *mem = mmap(NULL, ub->br_bytes, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED)
    return -errno;
  ub->br = mem;
  io_uring_buf_ring_init(ub->br);
  struct io_uring_buf_reg reg = {
      .ring_addr = (uintptr_t)mem, .ring_entries = ub->nbufs, .bgid = U_BGID};
  int err = io_uring_register_buf_ring(&ub->ring, &reg, 0);
  if (err != 0)
    return err;
  ub->bufs = calloc(ub->nbufs, sizeof *ub->bufs);
  if (ub->bufs == NULL)
    return EDDY_ENOMEM;
  for (unsigned i = 0; i < ub->nbufs; i++) {
    ub->bufs[i] = eddy__lent_block_new(ub->buf_size, eddy__u_recycle, loop, i);
    if (ub->bufs[i] == NULL)
      return EDDY_ENOMEM;
    eddy__u_put_buffer(loop, i);
  }
  return 0;
}

static void u_close(eddy_loop_t *loop);

/* The batch wait's minimum in microseconds, from EDDY_URING_MIN_WAIT; 0
 * (wait for one completion) when unset, malformed, or when the kernel
 * cannot (no IORING_FEAT_MIN_TIMEOUT). */
static unsigned u_min_wait(const struct io_uring *ring) {
  const char *env = getenv("EDDY_URING_MIN_WAIT");
  if (env == NULL || !(ring->features & IORING_FEAT_MIN_TIMEOUT))
    return 0;
  char *end;
  unsigned long us = strtoul(env, &end, 10);
  return end != env && *end == '\0' && us <= 1000000 ? (unsigned)us : 0;
}

static int u_init(eddy_loop_t *loop) {
  ubackend_t *ub = calloc(1, sizeof *ub);
  if (ub == NULL)
    return EDDY_ENOMEM;
  eddy__queue_init(&ub->uios);
  eddy__queue_init(&ub->ready);
  eddy__queue_init(&ub->starved);
  eddy__queue_init(&ub->dead);
  int err = u_setup(&ub->ring, U_ENTRIES);
  if (err != 0) {
    free(ub);
    return err;
  }
  loop->backend_data = ub;
  loop->backend_fd = ub->ring.ring_fd;
  ub->min_wait_us = u_min_wait(&ub->ring);
  err = u_buffers_init(loop, ub);
  if (err != 0)
    u_close(loop);
  return err;
}

static void u_close(eddy_loop_t *loop) {
  ubackend_t *ub = u_backend(loop);
  if (ub == NULL)
    return;
  io_uring_queue_exit(&ub->ring); /* the kernel lets go of everything */
  while (!eddy__queue_empty(&ub->uios)) {
    uio_t *u = eddy__container_of(eddy__queue_head(&ub->uios), uio_t, node);
    eddy__queue_remove(&u->node);
    if (u->owner != NULL)
      u->owner->backend_data = NULL;
    if (u->stash_fd >= 0)
      close(u->stash_fd);
    free(u->stash);
    free(u);
  }
  for (unsigned i = 0; ub->bufs != NULL && i < ub->nbufs; i++)
    if (ub->bufs[i] != NULL)
      eddy__lent_block_free(ub->bufs[i]);
  free(ub->bufs);
  if (ub->br != NULL)
    munmap(ub->br, ub->br_bytes);
  free(ub);
  loop->backend_data = NULL;
  loop->backend_fd = -1;
}

/* ---- Submissions and uios -------------------------------------------------
 */

struct io_uring_sqe *eddy__u_sqe(eddy_loop_t *loop) {
  ubackend_t *ub = u_backend(loop);
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ub->ring);
  while (sqe == NULL) {
    io_uring_submit(&ub->ring); /* full: send what is queued now */
    sqe = io_uring_get_sqe(&ub->ring);
  }
  return sqe;
}

uio_t *eddy__u_get(eddy_loop_t *loop, eddy__io_t *io) {
  if (io->backend_data != NULL)
    return io->backend_data;
  uio_t *u = calloc(1, sizeof *u);
  if (u == NULL)
    return NULL;
  u->io = io;
  u->owner = io;
  u->poll_tag = U_POLL_A;
  u->stash_fd = -1;
  eddy__queue_init(&u->ready);
  eddy__queue_init(&u->starved);
  eddy__queue_insert_tail(&u_backend(loop)->uios, &u->node);
  io->backend_data = u;
  return u;
}

/* Cancels the submission(s) with that tag; the cancel's own completion is
 * counted like any other. */
void eddy__u_cancel(eddy_loop_t *loop, uio_t *u, unsigned tag) {
  struct io_uring_sqe *sqe = eddy__u_sqe(loop);
  io_uring_prep_cancel64(sqe, u_data(u, tag), IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, u_data(u, U_IGNORE));
  u->inflight++;
}

/* Frees u once nothing of it is in flight and its owner let go; at the end
 * of the batch, since other completions of the batch may name it. */
void eddy__u_release(eddy_loop_t *loop, uio_t *u) {
  if (u->io != NULL || u->inflight != 0 || eddy__queue_empty(&u->node))
    return;
  eddy__queue_remove(&u->node);
  eddy__queue_remove(&u->ready);
  eddy__queue_remove(&u->starved);
  eddy__queue_insert_tail(&u_backend(loop)->dead, &u->node);
}

static void u_free_dead(eddy_loop_t *loop) {
  ubackend_t *ub = u_backend(loop);
  while (!eddy__queue_empty(&ub->dead)) {
    uio_t *u = eddy__container_of(eddy__queue_head(&ub->dead), uio_t, node);
    eddy__queue_remove(&u->node);
    if (u->owner != NULL && u->owner->backend_data == u)
      u->owner->backend_data = NULL;
    for (size_t i = 0; i < u->nstash; i++)
      if (u->stash[i].bid >= 0)
        eddy__u_put_buffer(loop, (unsigned)u->stash[i].bid);
    if (u->stash_fd >= 0)
      close(u->stash_fd);
    free(u->stash);
    free(u);
  }
}

/* ---- Readiness polls for fd-based watchers --------------------------------
 */

static unsigned to_poll(unsigned events) {
  unsigned m = 0;
  if (events & EDDY__IO_READ)
    m |= POLLIN;
  if (events & EDDY__IO_WRITE)
    m |= POLLOUT;
  if (events & EDDY__IO_PRI)
    m |= POLLPRI;
  if (events & EDDY__IO_HUP)
    m |= POLLRDHUP;
  return m;
}

static unsigned from_poll(unsigned m, unsigned wanted) {
  unsigned events = 0;
  if (m & POLLIN)
    events |= EDDY__IO_READ;
  if (m & POLLOUT)
    events |= EDDY__IO_WRITE;
  if (m & POLLPRI)
    events |= EDDY__IO_PRI;
  if (m & (POLLRDHUP | POLLHUP))
    events |= EDDY__IO_HUP;
  if (m & POLLERR)
    events |= EDDY__IO_ERR;
  if (m & (POLLERR | POLLHUP))
    events |= wanted & (EDDY__IO_READ | EDDY__IO_WRITE);
  return events;
}

/* Makes the armed poll match io->events. */
static void u_poll_sync(eddy_loop_t *loop, uio_t *u) {
  unsigned want = u->io != NULL ? u->io->events : 0;
  if (want == u->poll_mask)
    return;
  if (u->poll_mask != 0) {
    struct io_uring_sqe *sqe = eddy__u_sqe(loop);
    io_uring_prep_poll_remove(sqe, u_data(u, u->poll_tag));
    io_uring_sqe_set_data64(sqe, u_data(u, U_IGNORE));
    u->inflight++;
    u->poll_mask = 0;
    u->poll_tag = u->poll_tag == U_POLL_A ? U_POLL_B : U_POLL_A;
  }
  if (want == 0)
    return;
  struct io_uring_sqe *sqe = eddy__u_sqe(loop);
  if (want & EDDY__IO_EDGE)
    io_uring_prep_poll_multishot(sqe, u->io->fd, to_poll(want));
  else
    io_uring_prep_poll_add(sqe, u->io->fd, to_poll(want));
  io_uring_sqe_set_data64(sqe, u_data(u, u->poll_tag));
  u->inflight++;
  u->poll_mask = want;
}

static int u_io_start(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  uio_t *u = eddy__u_get(loop, io);
  if (u == NULL)
    return EDDY_ENOMEM;
  io->events |= events;
  io->pevents = io->events;
  u_poll_sync(loop, u);
  return 0;
}

static void u_io_stop(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  io->events &= ~events;
  io->pevents = io->events;
  if (io->backend_data != NULL)
    u_poll_sync(loop, io->backend_data);
}

static void u_io_close(eddy_loop_t *loop, eddy__io_t *io) {
  uio_t *u = io->backend_data;
  io->events = 0;
  io->pevents = 0;
  if (u == NULL)
    return;
  u_poll_sync(loop, u);
  u->io = NULL;
  u->owner = NULL;
  io->backend_data = NULL; /* a poll holds no memory of the owner */
  eddy__u_release(loop, u);
}

static void u_poll_cqe(eddy_loop_t *loop, uio_t *u, unsigned tag, int res,
                       unsigned flags) {
  if (tag != u->poll_tag)
    return; /* a poll replaced by another: its news is stale */
  if (!(flags & IORING_CQE_F_MORE))
    u->poll_mask = 0; /* one-shot fired, or multishot ended */
  eddy__io_t *io = u->io;
  if (io != NULL && res > 0) {
    unsigned ready = from_poll((unsigned)res, io->events);
    ready &= io->events | EDDY__IO_HUP | EDDY__IO_ERR;
    if (ready != 0) {
      io->cb(loop, io, ready);
      eddy__after_callback(loop);
    }
  }
  if (u->io != NULL && u->poll_mask == 0)
    u_poll_sync(loop, u); /* level-triggered: ask again */
}

/* ---- Waiting and dispatching ----------------------------------------------
 */

static void u_dispatch(eddy_loop_t *loop, uint64_t data, int res,
                       unsigned flags) {
  uio_t *u = (uio_t *)(uintptr_t)(data & ~(uint64_t)U_TAG_MASK);
  unsigned tag = (unsigned)(data & U_TAG_MASK);
  if (tag == U_OP) { /* not a uio: another layer's operation */
    eddy__ring_op_t *op =
        (eddy__ring_op_t *)(uintptr_t)(data & ~(uint64_t)U_TAG_MASK);
    op->cqe(loop, op, res, flags);
    return;
  }
  if (!(flags & IORING_CQE_F_MORE))
    u->inflight--;
  if (tag == U_POLL_A || tag == U_POLL_B)
    u_poll_cqe(loop, u, tag, res, flags);
  else if (tag != U_IGNORE)
    eddy__u_stream_cqe(loop, u, tag, res, flags);
  eddy__u_release(loop, u);
}

/* Work the loop owes without the kernel: reads stashed while a stream was
 * not reading, and receives that waited for buffers. */
static int u_run_ready(eddy_loop_t *loop) {
  ubackend_t *ub = u_backend(loop);
  int ran = 0;
  eddy_queue_t q;
  eddy__queue_move(&ub->starved, &q);
  while (!eddy__queue_empty(&q)) {
    uio_t *u = eddy__container_of(eddy__queue_head(&q), uio_t, starved);
    eddy__queue_remove(&u->starved);
    eddy__u_arm_recv(loop, u);
  }
  eddy__queue_move(&ub->ready, &q);
  while (!eddy__queue_empty(&q)) {
    uio_t *u = eddy__container_of(eddy__queue_head(&q), uio_t, ready);
    eddy__queue_remove(&u->ready);
    eddy__u_deliver_stash(loop, u);
    ran = 1;
  }
  return ran;
}

static struct __kernel_timespec u_timespec(int ms) {
  struct __kernel_timespec ts = {.tv_sec = ms / 1000,
                                 .tv_nsec = (ms % 1000) * 1000000L};
  return ts;
}

/* Submits what is queued and waits for a batch of completions: returns
 * once U_WAIT_BATCH are in, or after min_wait_us if at least one is, or,
 * with none, at the loop's timeout (timeout_ms < 0: none).
 *
 * Why it exists: waiting for one completion lets the completions of the
 * loop's own sends, which the submit itself finishes on loopback, end the
 * wait, so a busy server turns around every one or two messages (an
 * io_uring_enter each: 0.5-0.9 per HTTP request at depth 1; with this,
 * 0.13).  Why it is off by default: when fewer than a batch come, every
 * wait sits out the minimum and a timer wake-up.  Measured
 * (perf/echo/README.md, perf/files/README.md): a file read with one
 * request in flight runs at a third of its speed, an echo server that is
 * not saturated spends more CPU per message, and requests per server
 * CPU-second of a saturated HTTP server did not move.  Fewer syscalls
 * alone were not worth that.
 *
 * liburing 2.3 has no call for it (2.8's io_uring_submit_and_wait_min_
 * timeout), so: flush the submission tail as liburing does, then enter
 * with the extended argument. */
static int u_submit_and_wait_batch(ubackend_t *ub, int timeout_ms) {
  struct io_uring_sq *sq = &ub->ring.sq;
  unsigned tail = sq->sqe_tail;
  if (sq->sqe_head != tail) {
    sq->sqe_head = tail;
    io_uring_smp_store_release(sq->ktail, tail); /* no SQPOLL: plain order */
  }
  unsigned to_submit = tail - IO_URING_READ_ONCE(*sq->khead);

  struct __kernel_timespec ts;
  struct io_uring_getevents_arg arg;
  memset(&arg, 0, sizeof arg);
  arg.pad = ub->min_wait_us; /* min_wait_usec */
  if (timeout_ms >= 0) {
    ts = u_timespec(timeout_ms);
    arg.ts = (uint64_t)(uintptr_t)&ts;
  }
  /* liburing's wrapper returns -errno, as its other calls do. */
  return io_uring_enter2(ub->ring.ring_fd, to_submit, U_WAIT_BATCH,
                         IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                         (sigset_t *)&arg, sizeof arg);
}

static void u_wait(eddy_loop_t *loop, int timeout) {
  ubackend_t *ub = u_backend(loop);
  struct io_uring_cqe *cqes[U_BATCH];
  struct {
    uint64_t data;
    int res;
    unsigned flags;
  } done[U_BATCH];

  if (u_run_ready(loop))
    timeout = 0;
  int err;
  if (timeout == 0) {
    err = io_uring_submit_and_get_events(&ub->ring);
  } else if (ub->min_wait_us != 0 && ub->fs_inflight == 0) {
    /* Not with file requests on the ring: one in flight is often the only
     * completion to come, and each read would sit out the minimum
     * (perf/files/README.md: a third of the speed). */
    err = u_submit_and_wait_batch(ub, timeout);
  } else if (timeout < 0) {
    err = io_uring_submit_and_wait(&ub->ring, 1);
  } else {
    struct __kernel_timespec ts = u_timespec(timeout);
    struct io_uring_cqe *cqe;
    err = io_uring_submit_and_wait_timeout(&ub->ring, &cqe, 1, &ts, NULL);
  }
  (void)err; /* -ETIME, -EINTR: the completions below are what counts */
  eddy_update_time(loop);

  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ub->ring, cqes, U_BATCH);
    if (n == 0) {
      /* The kernel keeps what overflowed the completion queue (NODROP);
       * fetch it before waiting again. */
      if (!io_uring_cq_has_overflow(&ub->ring))
        break;
      io_uring_get_events(&ub->ring);
      continue;
    }
    /* Copy, then hand the slots back: callbacks may submit and reap. */
    for (unsigned i = 0; i < n; i++) {
      done[i].data = cqes[i]->user_data;
      done[i].res = cqes[i]->res;
      done[i].flags = cqes[i]->flags;
    }
    io_uring_cq_advance(&ub->ring, n);
    for (unsigned i = 0; i < n; i++)
      u_dispatch(loop, done[i].data, done[i].res, done[i].flags);
    if (n < U_BATCH)
      break;
  }
  u_free_dead(loop);
}

const eddy__backend_t eddy__backend_uring = {
    .name = "io_uring",
    .init = u_init,
    .close = u_close,
    .io_start = u_io_start,
    .io_stop = u_io_stop,
    .io_close = u_io_close,
    .wait = u_wait,
    .accept_start = eddy__u_accept_start,
    .accept_stop = eddy__u_accept_stop,
    .read_start = eddy__u_read_start,
    .read_stop = eddy__u_read_stop,
    .write = eddy__u_write,
    .connect = eddy__u_connect,
    .sio_stop = eddy__u_sio_stop,
    .sio_busy = eddy__u_sio_busy,
};
