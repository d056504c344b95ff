/* What eddy's modules share and users never see. */
#ifndef EDDY_INTERNAL_H
#define EDDY_INTERNAL_H

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include "eddy.h"
#include "queue.h"

#define EDDY__HIDDEN __attribute__((visibility("hidden")))

/* Misuse by the caller (a closed handle started again, closing twice, a
 * negative timeout): abort in debug builds, where it is a bug to find now;
 * an error value in release builds, where the process should go on. */
#ifdef NDEBUG
#define EDDY__MISUSE(cond, err)                                               \
  do {                                                                        \
    if (cond)                                                                 \
      return (err);                                                           \
  } while (0)
#else
#define EDDY__MISUSE(cond, err) assert(!(cond))
#endif

/* eddy_handle_t.flags */
enum {
  EDDY__HANDLE_ACTIVE = 1u << 0,
  EDDY__HANDLE_REF = 1u << 1,
  EDDY__HANDLE_CLOSING = 1u << 2,
  EDDY__HANDLE_CLOSED = 1u << 3,
};

/* Readiness bits of eddy__io_t.events, given to eddy__io_cb. */
enum {
  EDDY__IO_READ = 1u << 0,
  EDDY__IO_WRITE = 1u << 1,
  EDDY__IO_PRI = 1u << 2,
  EDDY__IO_HUP = 1u << 3, /* peer hung up or shut down its writing side */
  EDDY__IO_ERR = 1u << 4, /* error on the fd (reported, never requested) */
  /* Requested with READ: report each new write to the fd once instead of
   * while it stays readable.  For eventfds, whose every write is an edge:
   * the loop then never needs to read them. */
  EDDY__IO_EDGE = 1u << 5,
};

/* The backend interface.  It is drawn at the level of operations so that a
 * completion backend (io_uring) does each natively and a readiness backend
 * (epoll) does it with readiness plus plain syscalls.
 *
 * The loop core uses io_start / io_stop / wait for the descriptors that are
 * fd-based by nature (eventfds, signalfd, user poll handles).  The stream
 * layer (net/) will add accept, read-into-loop-buffers, write-a-queue,
 * connect and close operations here; see docs/design.md, "Backends". */
typedef struct eddy__backend_s {
  const char *name;
  int (*init)(eddy_loop_t *loop);
  void (*close)(eddy_loop_t *loop);
  /* Watch io->fd for the EDDY__IO_* bits in events (added to those already
   * watched).  The callback runs in the poll phase. */
  int (*io_start)(eddy_loop_t *loop, eddy__io_t *io, unsigned events);
  /* Stop watching the bits in events; no callback for them runs after this
   * returns, even for readiness already collected in this iteration. */
  void (*io_stop)(eddy_loop_t *loop, eddy__io_t *io, unsigned events);
  /* Forget io entirely before its fd is closed. */
  void (*io_close)(eddy_loop_t *loop, eddy__io_t *io);
  /* Wait for events up to timeout ms (-1: no limit, 0: do not block),
   * update the loop time, and run the callbacks of what is ready. */
  void (*wait)(eddy_loop_t *loop, int timeout);

  /* Stream operations on sio->io.fd, reported through sio's callbacks.
   * accept: on_accept for each connection until stopped.  read: on_read
   * with a borrowed slice of loop memory for each chunk until stopped.
   * write: the stream's queue (fill_iov) has bytes; write what the kernel
   * takes now and the rest later, reporting through on_written, possibly
   * before write returns.  connect: 0 when under way (on_connect tells the
   * end), or an immediate error.  sio_stop: end every operation; after it
   * no callback of sio runs and the kernel holds nothing of it. */
  int (*accept_start)(eddy_loop_t *loop, eddy__sio_t *sio);
  void (*accept_stop)(eddy_loop_t *loop, eddy__sio_t *sio);
  int (*read_start)(eddy_loop_t *loop, eddy__sio_t *sio);
  void (*read_stop)(eddy_loop_t *loop, eddy__sio_t *sio);
  void (*write)(eddy_loop_t *loop, eddy__sio_t *sio);
  int (*connect)(eddy_loop_t *loop, eddy__sio_t *sio,
                 const struct sockaddr *addr, socklen_t len);
  void (*sio_stop)(eddy_loop_t *loop, eddy__sio_t *sio);
  /* Nonzero while the kernel still holds memory of a stopped sio (a send's
   * buffers): its handle's close callback waits. */
  int (*sio_busy)(eddy_loop_t *loop, eddy__sio_t *sio);
} eddy__backend_t;

/* fill_iov's answer when the queue's next bytes are a file range (a write
 * made with eddy_write_file): iov[0].iov_base then points at the range, a
 * struct eddy__wfile_s that stays valid until on_written reports on it, and
 * the backend sends from it with eddy__sendfile_range, reporting the count
 * through on_written as for any write.  fill_iov returns buffers before a
 * file range on their own, so the two never mix in one call. */
#define EDDY__FILL_FILE (-1)

/* At most this much per sendfile call (the kernel's own cap is 2 GB). */
#define EDDY__SENDFILE_MAX ((size_t)1 << 30)

/* One sendfile(2) of the range into the non-blocking fd out: bytes sent,
 * EDDY_EAGAIN when out is full, EDDY_EIO when the file ended before the
 * range did, or another error. */
static inline long eddy__sendfile_range(int out,
                                        const struct eddy__wfile_s *f) {
  off_t off = (off_t)f->offset;
  size_t count = f->len < EDDY__SENDFILE_MAX ? f->len : EDDY__SENDFILE_MAX;
  ssize_t n;
  do
    n = sendfile(out, f->fd, &off, count);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? EDDY_EAGAIN : -errno;
  return n > 0 ? (long)n : EDDY_EIO;
}

/* eddy__sio_t.ops */
enum {
  EDDY__OP_ACCEPT = 1u << 0,
  EDDY__OP_READ = 1u << 1,
  EDDY__OP_WRITE = 1u << 2,
  EDDY__OP_CONNECT = 1u << 3,
};

/* Size of the blocks reads land in: Node reads 64 KB at a time. */
#define EDDY__READ_BLOCK (64 * 1024)

/* A slice of EDDY__READ_BLOCK bytes for a read, from the loop's small cache
 * of read blocks (core/slab.c). */
int eddy__read_block(eddy_loop_t *loop, eddy_slice_t *out);

/* Blocks a backend lends to the kernel and then to read callbacks (the
 * io_uring provided buffers): refcounted like slices, and handed back to
 * recycle() when the last reference goes. */
struct eddy__slab_s;
typedef void (*eddy__recycle_fn)(struct eddy__slab_s *b, void *ctx,
                                 unsigned id);
struct eddy__slab_s *eddy__lent_block_new(size_t bytes,
                                          eddy__recycle_fn recycle, void *ctx,
                                          unsigned id);
char *eddy__lent_block_data(struct eddy__slab_s *b);
/* A slice of the block's first len bytes, holding its only reference. */
void eddy__lent_block_slice(struct eddy__slab_s *b, size_t len,
                            eddy_slice_t *out);
void eddy__lent_block_free(struct eddy__slab_s *b);
size_t eddy__lent_block_refs(const struct eddy__slab_s *b);

EDDY__HIDDEN extern const eddy__backend_t eddy__backend_epoll;
EDDY__HIDDEN extern const eddy__backend_t eddy__backend_uring;
/* core/uring.c: 0 if a ring can be set up here, else why not. */
int eddy__uring_probe(void);
/* core/epoll_stream.c */
int eddy__epoll_accept_start(eddy_loop_t *loop, eddy__sio_t *sio);
void eddy__epoll_accept_stop(eddy_loop_t *loop, eddy__sio_t *sio);
int eddy__epoll_read_start(eddy_loop_t *loop, eddy__sio_t *sio);
void eddy__epoll_read_stop(eddy_loop_t *loop, eddy__sio_t *sio);
void eddy__epoll_write(eddy_loop_t *loop, eddy__sio_t *sio);
int eddy__epoll_connect(eddy_loop_t *loop, eddy__sio_t *sio,
                        const struct sockaddr *addr, socklen_t len);
void eddy__epoll_sio_stop(eddy_loop_t *loop, eddy__sio_t *sio);
int eddy__epoll_sio_busy(eddy_loop_t *loop, eddy__sio_t *sio);

static inline void eddy__io_init(eddy__io_t *io, eddy__io_cb cb, int fd) {
  io->fd = fd;
  io->events = 0;
  io->pevents = 0;
  io->cb = cb;
  io->backend_data = NULL;
}

static inline int eddy__io_start(eddy_loop_t *loop, eddy__io_t *io,
                                 unsigned events) {
  return loop->backend->io_start(loop, io, events);
}

static inline void eddy__io_stop(eddy_loop_t *loop, eddy__io_t *io,
                                 unsigned events) {
  loop->backend->io_stop(loop, io, events);
}

static inline void eddy__io_close(eddy_loop_t *loop, eddy__io_t *io) {
  loop->backend->io_close(loop, io);
}

/* Handles. */
void eddy__handle_init(eddy_loop_t *loop, eddy_handle_t *h,
                       eddy_handle_type type);

static inline void eddy__handle_start(eddy_handle_t *h) {
  if (h->flags & EDDY__HANDLE_ACTIVE)
    return;
  h->flags |= EDDY__HANDLE_ACTIVE;
  if (h->flags & EDDY__HANDLE_REF)
    h->loop->active_handles++;
}

static inline void eddy__handle_stop(eddy_handle_t *h) {
  if (!(h->flags & EDDY__HANDLE_ACTIVE))
    return;
  h->flags &= ~EDDY__HANDLE_ACTIVE;
  if (h->flags & EDDY__HANDLE_REF)
    h->loop->active_handles--;
}

static inline int eddy__handle_closing(const eddy_handle_t *h) {
  return (h->flags & (EDDY__HANDLE_CLOSING | EDDY__HANDLE_CLOSED)) != 0;
}

/* Callbacks: every callback the loop runs is followed by this, which
 * drains the next-tick queue, then the microtasks, until both are empty. */
void eddy__run_ticks(eddy_loop_t *loop);

static inline void eddy__after_callback(eddy_loop_t *loop) {
  if (loop->ticks.len != 0 || loop->microtasks.len != 0)
    eddy__run_ticks(loop);
}

void eddy__ticks_free(eddy_loop_t *loop);

/* Pending phase. */
static inline void eddy__pending_add(eddy_loop_t *loop, eddy__pending_t *p) {
  eddy__queue_insert_tail(&loop->pending, &p->node);
}

/* Timers. */
void eddy__run_timers(eddy_loop_t *loop);
int eddy__next_timeout(const eddy_loop_t *loop);
void eddy__timers_free(eddy_loop_t *loop);

/* Idle, prepare, check. */
void eddy__run_hooks(eddy_loop_t *loop, eddy_queue_t *list);
void eddy__hook_close(struct eddy__hook_s *h);

/* Async. */
int eddy__async_loop_init(eddy_loop_t *loop);
void eddy__async_loop_close(eddy_loop_t *loop);
void eddy__async_close(eddy_async_t *a);

/* Signals. */
void eddy__signal_loop_init(eddy_loop_t *loop);
void eddy__signal_loop_close(eddy_loop_t *loop);
void eddy__signal_close(eddy_signal_t *s);

/* Poll handles. */
void eddy__poll_close(eddy_poll_t *p);

/* Worker pool: the loop's completion queue (pool/pool.c). */
int eddy__pool_loop_init(eddy_loop_t *loop);
void eddy__pool_loop_close(eddy_loop_t *loop);
/* For eddy_memory_usage: work waiting for a thread, threads started. */
size_t eddy__pool_queued(void);
size_t eddy__pool_threads(void);

/* Buffers. */
void eddy__slab_loop_init(eddy_loop_t *loop);
void eddy__slab_loop_close(eddy_loop_t *loop);
/* Bytes of free slabs plus the room left in the current one. */
size_t eddy__slab_free_bytes(const eddy_loop_t *loop);

/* Time. */
uint64_t eddy__clock_ms(void);

/* An eventfd, non-blocking and close-on-exec. */
int eddy__eventfd(void);
/* Writes 1 to an eventfd; EAGAIN (counter full) counts as success, the
 * reader is bound to wake anyway. */
void eddy__eventfd_signal(int fd);
/* Resets an eventfd to zero. */
void eddy__eventfd_drain(int fd);

#endif
