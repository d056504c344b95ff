/* Stream operations for the io_uring backend, done natively: multishot
 * accept, multishot receive into the provided-buffer ring, sendmsg from
 * the write queue, connect, and cancellation when a stream stops.
 *
 * A multishot request may still deliver after the stream asked it to stop
 * (the cancel is in flight): an accepted descriptor or received bytes are
 * then stashed and handed over when the stream starts again, never lost. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uring.h"

static eddy__sio_t *u_sio(uio_t *u) {
  return u->io != NULL ? eddy__container_of(u->io, eddy__sio_t, io) : NULL;
}

/* ---- Accept ----------------------------------------------------------------- */

static void arm_accept(eddy_loop_t *loop, uio_t *u) {
  struct io_uring_sqe *sqe = eddy__u_sqe(loop);
  io_uring_prep_multishot_accept(sqe, u->io->fd, NULL, NULL,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, u_data(u, U_ACCEPT));
  u->inflight++;
  u->armed |= EDDY__OP_ACCEPT;
}

static void accept_cqe(eddy_loop_t *loop, uio_t *u, int res, unsigned more) {
  eddy__sio_t *sio = u_sio(u);
  if (!more)
    u->armed &= ~EDDY__OP_ACCEPT;
  if (res >= 0) {
    if (sio != NULL && (sio->ops & EDDY__OP_ACCEPT) && u->stash_fd < 0)
      sio->on_accept(sio, res);
    else if (sio != NULL && u->stash_fd < 0)
      u->stash_fd = res; /* arrived while paused: keep it for later */
    else
      close(res);
  } else if (res != -ECANCELED && sio != NULL &&
             (sio->ops & EDDY__OP_ACCEPT)) {
    sio->on_accept(sio, res); /* EMFILE and the like: the stream sheds */
  }
  sio = u_sio(u);
  if (sio != NULL && (sio->ops & EDDY__OP_ACCEPT) &&
      !(u->armed & EDDY__OP_ACCEPT))
    arm_accept(loop, u);
}

int eddy__u_accept_start(eddy_loop_t *loop, eddy__sio_t *sio) {
  uio_t *u = eddy__u_get(loop, &sio->io);
  if (u == NULL)
    return EDDY_ENOMEM;
  sio->ops |= EDDY__OP_ACCEPT;
  if (u->stash_fd >= 0 && eddy__queue_empty(&u->ready))
    eddy__queue_insert_tail(&u_backend(loop)->ready, &u->ready);
  else if (!(u->armed & EDDY__OP_ACCEPT))
    arm_accept(loop, u);
  return 0;
}

void eddy__u_accept_stop(eddy_loop_t *loop, eddy__sio_t *sio) {
  uio_t *u = sio->io.backend_data;
  sio->ops &= ~EDDY__OP_ACCEPT;
  if (u != NULL && (u->armed & EDDY__OP_ACCEPT))
    eddy__u_cancel(loop, u, U_ACCEPT);
}

/* ---- Receive ---------------------------------------------------------------- */

void eddy__u_arm_recv(eddy_loop_t *loop, uio_t *u) {
  eddy__sio_t *sio = u_sio(u);
  if (sio == NULL || !(sio->ops & EDDY__OP_READ) ||
      (u->armed & EDDY__OP_READ))
    return;
  struct io_uring_sqe *sqe = eddy__u_sqe(loop);
  io_uring_prep_recv_multishot(sqe, u->io->fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = U_BGID;
  io_uring_sqe_set_data64(sqe, u_data(u, U_RECV));
  u->inflight++;
  u->armed |= EDDY__OP_READ;
}

/* The callback kept the buffer: the ring gets a fresh one in its slot and
 * the kept block becomes the application's, freed by its last release.
 * Otherwise a few connections that hold their reads would empty the ring
 * for every connection of the loop.  (Without memory for a fresh block,
 * the kept one goes back to the ring when released, as before.) */
static void replace_retained(eddy_loop_t *loop, ubackend_t *ub, unsigned bid) {
  struct eddy__slab_s *fresh =
      eddy__lent_block_new(ub->buf_size, eddy__u_recycle, loop, bid);
  if (fresh == NULL)
    return;
  eddy__lent_block_free(ub->bufs[bid]); /* held: freed by its last release */
  ub->bufs[bid] = fresh;
  eddy__u_put_buffer(loop, bid);
}

/* Hands one receive result to the stream: bytes in a ring buffer (the
 * callback borrows it; unless retained it goes back to the ring when the
 * callback returns), or the end, or an error. */
static void deliver(eddy_loop_t *loop, eddy__sio_t *sio, int bid, int res) {
  if (bid >= 0) {
    ubackend_t *ub = u_backend(loop);
    struct eddy__slab_s *b = ub->bufs[bid];
    eddy_slice_t slice;
    eddy__lent_block_slice(b, (size_t)res, &slice);
    sio->on_read(sio, res, &slice);
    if (eddy__lent_block_refs(b) > 1)
      replace_retained(loop, ub, (unsigned)bid);
    eddy_slice_release(&slice);
  } else {
    sio->on_read(sio, res == 0 ? EDDY_EOF : res, NULL);
  }
}

static int stash(uio_t *u, int bid, int res) {
  if (u->nstash == u->capstash) {
    size_t cap = u->capstash ? u->capstash * 2 : 8;
    u_stash_t *s = realloc(u->stash, cap * sizeof *s);
    if (s == NULL)
      return EDDY_ENOMEM;
    u->stash = s;
    u->capstash = cap;
  }
  u->stash[u->nstash++] = (u_stash_t){bid, res};
  return 0;
}

void eddy__u_deliver_stash(eddy_loop_t *loop, uio_t *u) {
  eddy__sio_t *sio = u_sio(u);
  if (sio != NULL && u->stash_fd >= 0 && (sio->ops & EDDY__OP_ACCEPT)) {
    int fd = u->stash_fd;
    u->stash_fd = -1;
    sio->on_accept(sio, fd);
    sio = u_sio(u);
    if (sio != NULL && (sio->ops & EDDY__OP_ACCEPT) &&
        !(u->armed & EDDY__OP_ACCEPT))
      arm_accept(loop, u);
  }
  /* One at a time, taken off the stash before its callback: the callback
   * may stop reading, or close the stream and empty the stash. */
  int ended = 0;
  while (u->nstash > 0 && (sio = u_sio(u)) != NULL &&
         (sio->ops & EDDY__OP_READ)) {
    u_stash_t s = u->stash[0];
    memmove(u->stash, u->stash + 1, --u->nstash * sizeof *u->stash);
    ended = s.bid < 0;
    deliver(loop, sio, s.bid, s.res);
  }
  if (u->nstash == 0 && !ended)
    eddy__u_arm_recv(loop, u);
}

static void recv_cqe(eddy_loop_t *loop, uio_t *u, int res, unsigned flags) {
  eddy__sio_t *sio = u_sio(u);
  int bid = (flags & IORING_CQE_F_BUFFER) ? (int)(flags >> 16) : -1;
  if (!(flags & IORING_CQE_F_MORE))
    u->armed &= ~EDDY__OP_READ;
  if (res == -ENOBUFS) {
    /* The ring ran dry: the bytes wait in the socket; receive again when
     * a buffer comes back (u_run_ready re-arms starved streams). */
    if (sio != NULL && eddy__queue_empty(&u->starved))
      eddy__queue_insert_tail(&u_backend(loop)->starved, &u->starved);
    return;
  }
  if (res == -ECANCELED) {
    /* A read_stop's cancel, but the stream may have started reading again
     * while it was in flight (arm_recv saw the old receive armed then):
     * receive again, or the stream would wait for nothing. */
    if (u->nstash == 0)
      eddy__u_arm_recv(loop, u);
    return;
  }
  if (sio == NULL) {
    if (bid >= 0)
      eddy__u_put_buffer(loop, (unsigned)bid);
    return;
  }
  if ((sio->ops & EDDY__OP_READ) && u->nstash == 0) {
    deliver(loop, sio, bid, res);
  } else if (stash(u, bid, res) != 0) {
    if (bid >= 0)
      eddy__u_put_buffer(loop, (unsigned)bid);
    sio->on_read(sio, EDDY_ENOMEM, NULL);
  }
  if (res > 0)
    eddy__u_arm_recv(loop, u); /* a multishot receive the kernel ended */
}

int eddy__u_read_start(eddy_loop_t *loop, eddy__sio_t *sio) {
  uio_t *u = eddy__u_get(loop, &sio->io);
  if (u == NULL)
    return EDDY_ENOMEM;
  sio->ops |= EDDY__OP_READ;
  if (u->nstash > 0) {
    if (eddy__queue_empty(&u->ready))
      eddy__queue_insert_tail(&u_backend(loop)->ready, &u->ready);
  } else {
    eddy__u_arm_recv(loop, u);
  }
  return 0;
}

void eddy__u_read_stop(eddy_loop_t *loop, eddy__sio_t *sio) {
  uio_t *u = sio->io.backend_data;
  sio->ops &= ~EDDY__OP_READ;
  if (u != NULL && (u->armed & EDDY__OP_READ))
    eddy__u_cancel(loop, u, U_RECV);
}

/* ---- Send -------------------------------------------------------------------- */

/* io_uring has no sendfile operation.  A file range at the queue's front
 * is sent with sendfile(2) at once (the socket is usually writable); when
 * the socket is full, a one-shot POLLOUT poll goes in flight under the
 * send's tag, marked by msg.msg_iov == NULL (a sendmsg always has iovs), and
 * its completion sends again.  Splicing through a pipe would take two linked
 * requests and a pipe per stream for the same copy the kernel does here. */
static void arm_writable(eddy_loop_t *loop, uio_t *u) {
  struct io_uring_sqe *sqe = eddy__u_sqe(loop);
  io_uring_prep_poll_add(sqe, u->io->fd, POLLOUT);
  io_uring_sqe_set_data64(sqe, u_data(u, U_SEND));
  u->msg.msg_iov = NULL;
  u->inflight++;
  u->armed |= EDDY__OP_WRITE;
}

/* Sends file ranges at the front of the queue while the socket takes them:
 * 1 when buffers are next, 0 when done for now.  The write bit is held over
 * on_written so a write made from its callbacks only queues (this loop
 * sends it) instead of starting a second send. */
static int send_files(eddy_loop_t *loop, uio_t *u, eddy__sio_t *sio) {
  for (;;) {
    if (sio->fill_iov(sio, u->iov, 1) != EDDY__FILL_FILE)
      return 1;
    long n = eddy__sendfile_range(u->io->fd, u->iov[0].iov_base);
    if (n == EDDY_EAGAIN) {
      arm_writable(loop, u);
      return 0;
    }
    u->armed |= EDDY__OP_WRITE;
    sio->on_written(sio, n);
    u->armed &= ~EDDY__OP_WRITE;
    if (n < 0 || u_sio(u) == NULL)
      return 0;
  }
}

static void arm_send(eddy_loop_t *loop, uio_t *u, eddy__sio_t *sio) {
  if (u->armed & (EDDY__OP_WRITE | EDDY__OP_CONNECT))
    return; /* one send at a time keeps the queue's order */
  if (!send_files(loop, u, sio))
    return;
  int cnt = sio->fill_iov(sio, u->iov, (int)(sizeof u->iov / sizeof u->iov[0]));
  if (cnt <= 0)
    return;
  memset(&u->msg, 0, sizeof u->msg);
  u->msg.msg_iov = u->iov;
  u->msg.msg_iovlen = (size_t)cnt;
  struct io_uring_sqe *sqe = eddy__u_sqe(loop);
  io_uring_prep_sendmsg(sqe, u->io->fd, &u->msg, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, u_data(u, U_SEND));
  u->inflight++;
  u->armed |= EDDY__OP_WRITE;
}

static void send_cqe(eddy_loop_t *loop, uio_t *u, int res) {
  eddy__sio_t *sio = u_sio(u);
  int was_poll = u->msg.msg_iov == NULL;
  u->armed &= ~EDDY__OP_WRITE;
  if (sio == NULL || res == -ECANCELED)
    return;
  if (was_poll && res >= 0) {
    arm_send(loop, u, sio); /* writable (or broken: sendfile says so) */
    return;
  }
  sio->on_written(sio, res);
  sio = u_sio(u);
  if (sio != NULL && res >= 0)
    arm_send(loop, u, sio);
}

void eddy__u_write(eddy_loop_t *loop, eddy__sio_t *sio) {
  uio_t *u = eddy__u_get(loop, &sio->io);
  if (u == NULL) {
    sio->on_written(sio, EDDY_ENOMEM);
    return;
  }
  arm_send(loop, u, sio);
}

/* ---- Connect, stop ------------------------------------------------------------ */

int eddy__u_connect(eddy_loop_t *loop, eddy__sio_t *sio,
                    const struct sockaddr *addr, socklen_t len) {
  uio_t *u = eddy__u_get(loop, &sio->io);
  if (u == NULL)
    return EDDY_ENOMEM;
  struct io_uring_sqe *sqe = eddy__u_sqe(loop);
  io_uring_prep_connect(sqe, sio->io.fd, addr, len);
  io_uring_sqe_set_data64(sqe, u_data(u, U_CONNECT));
  u->inflight++;
  u->armed |= EDDY__OP_CONNECT;
  /* The kernel reads the address when the request is submitted, and the
   * caller's copy may not outlive this call. */
  io_uring_submit(&u_backend(loop)->ring);
  return 0;
}

static void connect_cqe(eddy_loop_t *loop, uio_t *u, int res) {
  eddy__sio_t *sio = u_sio(u);
  u->armed &= ~EDDY__OP_CONNECT;
  if (sio != NULL && res != -ECANCELED)
    sio->on_connect(sio, res);
}

void eddy__u_stream_cqe(eddy_loop_t *loop, uio_t *u, unsigned tag, int res,
                        unsigned flags) {
  switch (tag) {
  case U_ACCEPT:
    accept_cqe(loop, u, res, flags & IORING_CQE_F_MORE);
    break;
  case U_RECV:
    recv_cqe(loop, u, res, flags);
    break;
  case U_SEND:
    send_cqe(loop, u, res);
    break;
  case U_CONNECT:
    connect_cqe(loop, u, res);
    break;
  default:
    break;
  }
}

/* Cancels whatever is in flight.  The stream closes its descriptor right
 * after; the requests hold their own reference to the file, so they end
 * with -ECANCELED, and until then sio_busy keeps the close callback (and so
 * the send's buffers) waiting. */
void eddy__u_sio_stop(eddy_loop_t *loop, eddy__sio_t *sio) {
  uio_t *u = sio->io.backend_data;
  sio->ops = 0;
  if (u == NULL)
    return;
  static const unsigned tags[] = {U_ACCEPT, U_RECV, U_SEND, U_CONNECT};
  static const unsigned ops[] = {EDDY__OP_ACCEPT, EDDY__OP_READ,
                                 EDDY__OP_WRITE, EDDY__OP_CONNECT};
  for (size_t i = 0; i < 4; i++)
    if (u->armed & ops[i])
      eddy__u_cancel(loop, u, tags[i]);
  if (u->stash_fd >= 0) {
    close(u->stash_fd);
    u->stash_fd = -1;
  }
  for (size_t i = 0; i < u->nstash; i++)
    if (u->stash[i].bid >= 0)
      eddy__u_put_buffer(loop, (unsigned)u->stash[i].bid);
  u->nstash = 0;
  eddy__queue_remove(&u->ready);
  eddy__queue_remove(&u->starved);
  u->io = NULL;
  if (u->inflight == 0) {
    u->owner = NULL; /* nothing of the stream left in the kernel */
    sio->io.backend_data = NULL;
  }
  eddy__u_release(loop, u);
}

int eddy__u_sio_busy(eddy_loop_t *loop, eddy__sio_t *sio) {
  uio_t *u = sio->io.backend_data;
  return u != NULL && u->inflight > 0;
}
