/* What the io_uring backend's two files share. */
#ifndef EDDY_URING_H
#define EDDY_URING_H

#include <liburing.h>
#include <sys/socket.h>

#include "internal.h"

/* The low bits of a submission's user_data say what it was for; the rest
 * is its uio (allocations are 16-byte aligned). */
enum {
  U_IGNORE = 0, /* cancels and removals: only counted */
  U_POLL_A,     /* a readiness poll; A and B alternate when the mask */
  U_POLL_B,     /* changes, so the old one's completion is told apart */
  U_ACCEPT,
  U_RECV,
  U_SEND,
  U_CONNECT,
  U_OP, /* the rest is an eddy__ring_op_t: its handler completes it */
  U_TAG_MASK = 7
};

/* Stashed receive results for a stream that stopped reading while a
 * multishot receive still delivered. */
typedef struct {
  int bid; /* buffer id, or -1 for an end (res is EOF or an error) */
  int res;
} u_stash_t;

/* The backend's state of one eddy__io_t, kept apart from it: completions
 * can arrive after the owner let go, and land here. */
typedef struct eddy__uio_s {
  eddy__io_t *io;       /* NULL once the owner let go */
  eddy__io_t *owner;    /* whose backend_data points here, until freed */
  eddy_queue_t node;    /* every uio of the loop */
  eddy_queue_t ready;   /* in the ready list: stashed reads to deliver */
  eddy_queue_t starved; /* in the starved list: receive wants buffers */
  unsigned inflight;    /* submissions whose last completion is not in */
  unsigned poll_mask;   /* EDDY__IO_* of the armed poll, 0 if none */
  unsigned poll_tag;    /* U_POLL_A or U_POLL_B */
  unsigned armed;       /* EDDY__OP_* with a submission in flight */
  int stash_fd;         /* accepted while not accepting, or -1 */
  u_stash_t *stash;
  size_t nstash, capstash;
  struct msghdr msg;
  struct iovec iov[16];
} uio_t;

typedef struct {
  struct io_uring ring;
  eddy_queue_t uios;
  eddy_queue_t ready;
  eddy_queue_t starved;
  eddy_queue_t dead; /* uios to free after the batch */
  struct io_uring_buf_ring *br;
  size_t br_bytes;
  struct eddy__slab_s **bufs;
  unsigned nbufs;
  unsigned buf_size;
  unsigned min_wait_us; /* batch wait (see u_wait); 0: wait for one */
  unsigned fs_inflight; /* io/fs_uring.c's requests on the ring */
} ubackend_t;

#define U_BGID 0

static inline ubackend_t *u_backend(eddy_loop_t *loop) {
  return loop->backend_data;
}

static inline uint64_t u_data(uio_t *u, unsigned tag) {
  return (uint64_t)(uintptr_t)u | tag;
}

/* core/uring.c */
struct io_uring_sqe *eddy__u_sqe(eddy_loop_t *loop);
uio_t *eddy__u_get(eddy_loop_t *loop, eddy__io_t *io);
void eddy__u_cancel(eddy_loop_t *loop, uio_t *u, unsigned tag);
void eddy__u_release(eddy_loop_t *loop, uio_t *u);
void eddy__u_put_buffer(eddy_loop_t *loop, unsigned bid);
/* A ring buffer's last reference went: back into the ring. */
void eddy__u_recycle(struct eddy__slab_s *b, void *ctx, unsigned id);

/* An SQE whose completion goes to op->cqe (tag U_OP).  op must stay
 * valid until that completion has arrived. */
static inline struct io_uring_sqe *eddy__u_op_sqe(eddy_loop_t *loop,
                                                  eddy__ring_op_t *op) {
  struct io_uring_sqe *sqe = eddy__u_sqe(loop);
  io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | U_OP);
  return sqe;
}

/* core/uring_stream.c */
void eddy__u_stream_cqe(eddy_loop_t *loop, uio_t *u, unsigned tag, int res,
                        unsigned flags);
void eddy__u_deliver_stash(eddy_loop_t *loop, uio_t *u);
void eddy__u_arm_recv(eddy_loop_t *loop, uio_t *u);
int eddy__u_accept_start(eddy_loop_t *loop, eddy__sio_t *sio);
void eddy__u_accept_stop(eddy_loop_t *loop, eddy__sio_t *sio);
int eddy__u_read_start(eddy_loop_t *loop, eddy__sio_t *sio);
void eddy__u_read_stop(eddy_loop_t *loop, eddy__sio_t *sio);
void eddy__u_write(eddy_loop_t *loop, eddy__sio_t *sio);
int eddy__u_connect(eddy_loop_t *loop, eddy__sio_t *sio,
                    const struct sockaddr *addr, socklen_t len);
void eddy__u_sio_stop(eddy_loop_t *loop, eddy__sio_t *sio);
int eddy__u_sio_busy(eddy_loop_t *loop, eddy__sio_t *sio);

#endif
