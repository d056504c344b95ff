/* Stream operations for the epoll backend: readiness plus plain syscalls.
 *
 * One readiness callback serves every operation of a descriptor.  Each
 * step re-checks sio->ops, because a callback of an earlier step may have
 * stopped the stream (or closed it: its memory stays valid until the close
 * phase). */
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

#define EPOLL_IOV_MAX 64
/* Reads per readiness event while the kernel fills whole blocks: enough to
 * drain a burst, bounded so one busy socket cannot starve the others. */
#define EPOLL_READS_PER_EVENT 4

static unsigned wanted_io(const eddy__sio_t *sio) {
  unsigned events = 0;
  if (sio->ops & (EDDY__OP_ACCEPT | EDDY__OP_READ))
    events |= EDDY__IO_READ;
  if (sio->ops & (EDDY__OP_WRITE | EDDY__OP_CONNECT))
    events |= EDDY__IO_WRITE;
  return events;
}

/* Makes the registration match sio->ops. */
static int sio_sync(eddy_loop_t *loop, eddy__sio_t *sio) {
  unsigned want = wanted_io(sio);
  unsigned drop = sio->io.events & ~want;
  if (drop != 0)
    eddy__io_stop(loop, &sio->io, drop);
  if (want & ~sio->io.events)
    return eddy__io_start(loop, &sio->io, want);
  return 0;
}

static void do_accept(eddy__sio_t *sio) {
  while (sio->ops & EDDY__OP_ACCEPT) {
    int fd = accept4(sio->io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      sio->on_accept(sio, -errno);
      return;
    }
    sio->on_accept(sio, fd);
  }
}

static void do_read(eddy_loop_t *loop, eddy__sio_t *sio) {
  for (int i = 0; i < EPOLL_READS_PER_EVENT && (sio->ops & EDDY__OP_READ);
       i++) {
    eddy_slice_t slice;
    int err = eddy__read_block(loop, &slice);
    if (err != 0) {
      sio->on_read(sio, err, NULL);
      return;
    }
    ssize_t n;
    do
      n = read(sio->io.fd, slice.base, slice.len);
    while (n < 0 && errno == EINTR);
    int e = errno;
    if (n > 0) {
      size_t full = slice.len;
      slice.len = (size_t)n;
      sio->on_read(sio, n, &slice);
      eddy_slice_release(&slice);
      if ((size_t)n < full)
        return; /* the socket is empty now */
      continue;
    }
    eddy_slice_release(&slice);
    if (n == 0)
      sio->on_read(sio, EDDY_EOF, NULL);
    else if (e != EAGAIN && e != EWOULDBLOCK)
      sio->on_read(sio, -e, NULL);
    return;
  }
}

/* One sendfile of the range at the queue's front: 1 to go on writing, 0
 * when the socket is full (wait for writable) or the write failed. */
static int do_sendfile(eddy__sio_t *sio, const struct eddy__wfile_s *f) {
  size_t want = f->len < EDDY__SENDFILE_MAX ? f->len : EDDY__SENDFILE_MAX;
  long n = eddy__sendfile_range(sio->io.fd, f);
  if (n == EDDY_EAGAIN)
    return 0;
  if (n < 0) {
    sio->ops &= ~EDDY__OP_WRITE;
    sio->on_written(sio, n);
    return 0;
  }
  sio->on_written(sio, n); /* f may be gone after this */
  return (size_t)n == want;
}

/* Writes until the queue is empty or the socket is full.  MSG_NOSIGNAL:
 * a peer that went away is EPIPE for the writer, not SIGPIPE for the
 * process. */
static void do_write(eddy_loop_t *loop, eddy__sio_t *sio) {
  struct iovec iov[EPOLL_IOV_MAX];

  while (sio->ops & EDDY__OP_WRITE) {
    int cnt = sio->fill_iov(sio, iov, EPOLL_IOV_MAX);
    if (cnt == 0) {
      sio->ops &= ~EDDY__OP_WRITE;
      break;
    }
    if (cnt == EDDY__FILL_FILE) {
      if (!do_sendfile(sio, iov[0].iov_base))
        break;
      continue;
    }
    size_t total = 0;
    for (int i = 0; i < cnt; i++)
      total += iov[i].iov_len;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    ssize_t n;
    do
      n = sendmsg(sio->io.fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK) /* a pipe or a tty */
      n = writev(sio->io.fd, iov, cnt);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break; /* wait for writable */
      sio->ops &= ~EDDY__OP_WRITE;
      sio->on_written(sio, -errno);
      break;
    }
    sio->on_written(sio, n);
    if ((size_t)n < total)
      break;
  }
  sio_sync(loop, sio);
}

static void do_connect_done(eddy_loop_t *loop, eddy__sio_t *sio) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(sio->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  sio->ops &= ~EDDY__OP_CONNECT;
  sio_sync(loop, sio);
  sio->on_connect(sio, -err);
}

static void sio_io_cb(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  eddy__sio_t *sio = eddy__container_of(io, eddy__sio_t, io);
  unsigned broken = events & (EDDY__IO_ERR | EDDY__IO_HUP);

  if ((sio->ops & EDDY__OP_CONNECT) && (events & EDDY__IO_WRITE || broken)) {
    do_connect_done(loop, sio);
    return; /* the other operations start after the connect callback */
  }
  if ((sio->ops & EDDY__OP_ACCEPT) && (events & EDDY__IO_READ))
    do_accept(sio);
  if ((sio->ops & EDDY__OP_READ) && (events & EDDY__IO_READ || broken))
    do_read(loop, sio);
  if ((sio->ops & EDDY__OP_WRITE) && (events & EDDY__IO_WRITE || broken))
    do_write(loop, sio);
}

static void sio_prepare(eddy__sio_t *sio) {
  if (sio->io.cb == NULL)
    sio->io.cb = sio_io_cb;
}

int eddy__epoll_accept_start(eddy_loop_t *loop, eddy__sio_t *sio) {
  sio_prepare(sio);
  sio->ops |= EDDY__OP_ACCEPT;
  int err = sio_sync(loop, sio);
  if (err != 0)
    sio->ops &= ~EDDY__OP_ACCEPT;
  return err;
}

void eddy__epoll_accept_stop(eddy_loop_t *loop, eddy__sio_t *sio) {
  sio->ops &= ~EDDY__OP_ACCEPT;
  sio_sync(loop, sio);
}

int eddy__epoll_read_start(eddy_loop_t *loop, eddy__sio_t *sio) {
  sio_prepare(sio);
  sio->ops |= EDDY__OP_READ;
  int err = sio_sync(loop, sio);
  if (err != 0)
    sio->ops &= ~EDDY__OP_READ;
  return err;
}

void eddy__epoll_read_stop(eddy_loop_t *loop, eddy__sio_t *sio) {
  sio->ops &= ~EDDY__OP_READ;
  sio_sync(loop, sio);
}

void eddy__epoll_write(eddy_loop_t *loop, eddy__sio_t *sio) {
  sio_prepare(sio);
  if (sio->ops & EDDY__OP_WRITE)
    return; /* already waiting for writable: the queue goes out then */
  sio->ops |= EDDY__OP_WRITE;
  if (sio->ops & EDDY__OP_CONNECT)
    return; /* written once connected */
  do_write(loop, sio);
}

int eddy__epoll_connect(eddy_loop_t *loop, eddy__sio_t *sio,
                        const struct sockaddr *addr, socklen_t len) {
  sio_prepare(sio);
  int r;
  do
    r = connect(sio->io.fd, addr, len);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS)
    return -errno;
  /* Even an immediate success reports through the writable event, so the
   * callback never runs inside the call that asked for it. */
  sio->ops |= EDDY__OP_CONNECT;
  int err = sio_sync(loop, sio);
  if (err != 0)
    sio->ops &= ~EDDY__OP_CONNECT;
  return err;
}

void eddy__epoll_sio_stop(eddy_loop_t *loop, eddy__sio_t *sio) {
  sio->ops = 0;
  if (sio->io.fd >= 0)
    eddy__io_close(loop, &sio->io);
}

int eddy__epoll_sio_busy(eddy_loop_t *loop, eddy__sio_t *sio) {
  return 0; /* readiness: the kernel never holds our buffers */
}
