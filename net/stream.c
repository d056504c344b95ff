/* Streams: reading into loop buffers, an ordered write queue with
 * backpressure, shutdown, listening and accepting.  Everything that touches
 * the kernel goes through the backend's stream operations.
 *
 * Write callbacks never run inside the call that caused them.  A write that
 * completes inside eddy_write() delivers its callback right after the read
 * callback it was made from returns, or else in the next pending phase; a
 * write that completes when the socket becomes writable delivers at once. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/internal.h"

static eddy_stream_t *sio_stream(eddy__sio_t *sio) {
  return eddy__container_of(sio, eddy_stream_t, sio);
}

static void update_active(eddy_stream_t *s) {
  if (s->sflags & (EDDY__SF_READING | EDDY__SF_LISTENING))
    eddy__handle_start(&s->handle);
  else
    eddy__handle_stop(&s->handle);
}

static void schedule_pending(eddy_stream_t *s) {
  if (s->sflags & EDDY__SF_PENDING)
    return;
  s->sflags |= EDDY__SF_PENDING;
  eddy__pending_add(s->handle.loop, &s->pending);
}

/* ---- The EMFILE reserve -------------------------------------------------- */

/* One descriptor kept open so that, at the descriptor limit, a server can
 * free it, accept the waiting connections and close them (libuv's trick):
 * the listener stops being readable instead of spinning the loop, and the
 * server keeps listening for when descriptors free up. */
static int reserve_fd = -1;

static void reserve_open(void) {
  if (__atomic_load_n(&reserve_fd, __ATOMIC_ACQUIRE) >= 0)
    return;
  int fd = open("/", O_RDONLY | O_CLOEXEC);
  int none = -1;
  if (fd >= 0 && !__atomic_compare_exchange_n(&reserve_fd, &none, fd, 0,
                                              __ATOMIC_ACQ_REL,
                                              __ATOMIC_ACQUIRE))
    close(fd);
}

static void shed_connections(int listen_fd) {
  int fd = __atomic_exchange_n(&reserve_fd, -1, __ATOMIC_ACQ_REL);
  if (fd < 0)
    return;
  close(fd);
  for (;;) {
    int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c >= 0) {
      close(c);
      continue;
    }
    if (errno != EINTR)
      break;
  }
  reserve_open();
}

/* ---- Write queue --------------------------------------------------------- */

static eddy_write_t *queue_req(eddy_queue_t *n) {
  return eddy__container_of(n, eddy_write_t, node);
}

static void finish_req(eddy_stream_t *s, eddy_write_t *req, int status) {
  eddy__queue_remove(&req->node);
  req->status = status;
  eddy__queue_insert_tail(&s->write_done, &req->node);
}

/* n bytes left the queue: finished requests move to write_done. */
static void advance(eddy_stream_t *s, size_t n) {
  while (!eddy__queue_empty(&s->write_queue)) {
    eddy_write_t *req = queue_req(eddy__queue_head(&s->write_queue));
    while (req->index < req->nbufs) {
      eddy_buf_t *b = &req->bufs[req->index];
      if (b->len > n) {
        b->base += n;
        b->len -= n;
        s->write_queue_size -= n;
        return;
      }
      n -= b->len;
      s->write_queue_size -= b->len;
      req->index++;
    }
    struct eddy__wfile_s *f = &req->file;
    if (f->len > n) {
      f->offset += (int64_t)n;
      f->len -= n;
      s->write_queue_size -= n;
      return;
    }
    n -= f->len;
    s->write_queue_size -= f->len;
    f->offset += (int64_t)f->len;
    f->len = 0;
    finish_req(s, req, 0);
  }
}

static void fail_queue(eddy_stream_t *s, int status) {
  while (!eddy__queue_empty(&s->write_queue))
    finish_req(s, queue_req(eddy__queue_head(&s->write_queue)), status);
  s->write_queue_size = 0;
}

/* The queued buffers up to the first file range; or, when the range is
 * next, the range itself (EDDY__FILL_FILE, see core/internal.h). */
static int fill_iov(eddy__sio_t *sio, struct iovec *iov, int max) {
  eddy_stream_t *s = sio_stream(sio);
  int n = 0;
  for (eddy_queue_t *q = s->write_queue.next; q != &s->write_queue && n < max;
       q = q->next) {
    eddy_write_t *req = queue_req(q);
    unsigned i = req->index;
    for (; i < req->nbufs && n < max; i++) {
      if (req->bufs[i].len == 0)
        continue;
      iov[n].iov_base = req->bufs[i].base;
      iov[n].iov_len = req->bufs[i].len;
      n++;
    }
    if (req->file.len == 0 || i < req->nbufs)
      continue;
    if (n > 0)
      return n; /* the buffers before the range go first */
    iov[0].iov_base = &req->file;
    iov[0].iov_len = req->file.len;
    return EDDY__FILL_FILE;
  }
  return n;
}

static void do_shutdown(eddy_stream_t *s) {
  eddy_shutdown_t *req = s->shutdown_req;
  int status = s->error;
  if (status == 0 && shutdown(s->sio.io.fd, SHUT_WR) != 0)
    status = -errno;
  s->sflags |= EDDY__SF_SHUT;
  s->shutdown_req = NULL;
  s->handle.loop->active_reqs--;
  if (req->cb != NULL) {
    req->cb(req, status);
    eddy__after_callback(s->handle.loop);
  }
}

/* Runs the callbacks of finished writes, then drain and shutdown. */
static void flush_done(eddy_stream_t *s) {
  eddy_loop_t *loop = s->handle.loop;

  while (!eddy__queue_empty(&s->write_done)) {
    eddy_write_t *req = queue_req(eddy__queue_head(&s->write_done));
    eddy__queue_remove(&req->node);
    loop->active_reqs--;
    if (req->bufs != req->small)
      free(req->bufs);
    req->bufs = NULL;
    if (req->cb != NULL) {
      req->cb(req, req->status);
      eddy__after_callback(loop);
    }
  }
  if (eddy__handle_closing(&s->handle))
    return;
  if ((s->sflags & EDDY__SF_NEED_DRAIN) &&
      s->write_queue_size < s->high_water_mark) {
    s->sflags &= ~EDDY__SF_NEED_DRAIN;
    if (s->drain_cb != NULL) {
      s->drain_cb(s);
      eddy__after_callback(loop);
    }
  }
  if (s->shutdown_req != NULL && eddy__queue_empty(&s->write_queue) &&
      !eddy__handle_closing(&s->handle))
    do_shutdown(s);
}

/* Finished writes are delivered now, unless a caller up the stack is user
 * code of this stream: then after its read callback, or next iteration. */
static void deliver(eddy_stream_t *s) {
  if (s->sflags & EDDY__SF_IN_READ)
    return;
  if (s->sflags & EDDY__SF_IN_WRITE) {
    schedule_pending(s);
    return;
  }
  flush_done(s);
}

static void on_written(eddy__sio_t *sio, long n) {
  eddy_stream_t *s = sio_stream(sio);
  if (n < 0) {
    s->error = (int)n;
    fail_queue(s, (int)n);
  } else {
    advance(s, (size_t)n);
  }
  deliver(s);
}

static int queue_write(eddy_write_t *req, eddy_stream_t *s,
                       const eddy_buf_t bufs[], unsigned nbufs,
                       struct eddy__wfile_s file, eddy_write_cb cb);

int eddy_write(eddy_write_t *req, eddy_stream_t *s, const eddy_buf_t bufs[],
               unsigned nbufs, eddy_write_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&s->handle), EDDY_EINVAL);
  if (req == NULL || (bufs == NULL && nbufs > 0) || nbufs == 0)
    return EDDY_EINVAL;
  return queue_write(req, s, bufs, nbufs, (struct eddy__wfile_s){-1, 0, 0},
                     cb);
}

/* sendfile(2) has no MSG_NOSIGNAL: a peer that reset the connection would
 * kill the process with SIGPIPE where sendmsg reports EPIPE.  Blocking the
 * signal around each call would cost two syscalls per send; instead, the
 * first file write sets SIGPIPE to ignored if it still has the default
 * action (Node ignores it at start-up).  A handler the program installed
 * is left alone. */
static void sigpipe_ignore_once(void) {
  static int done;
  if (__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL))
    return;
  struct sigaction old, ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
      !(old.sa_flags & SA_SIGINFO))
    sigaction(SIGPIPE, &ign, NULL);
}

int eddy_write_file(eddy_write_t *req, eddy_stream_t *s,
                    const eddy_buf_t bufs[], unsigned nbufs, int fd,
                    int64_t offset, size_t len, eddy_write_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&s->handle), EDDY_EINVAL);
  if (req == NULL || (bufs == NULL && nbufs > 0) || fd < 0 || offset < 0 ||
      (nbufs == 0 && len == 0))
    return EDDY_EINVAL;
  sigpipe_ignore_once();
  return queue_write(req, s, bufs, nbufs, (struct eddy__wfile_s){fd, offset, len},
                     cb);
}

static int queue_write(eddy_write_t *req, eddy_stream_t *s,
                       const eddy_buf_t bufs[], unsigned nbufs,
                       struct eddy__wfile_s file, eddy_write_cb cb) {
  if (s->sio.io.fd < 0)
    return EDDY_EBADF;
  if (s->sflags & (EDDY__SF_SHUTTING | EDDY__SF_SHUT))
    return EDDY_EPIPE;
  if (s->error != 0)
    return s->error;

  req->bufs = req->small;
  if (nbufs > sizeof req->small / sizeof req->small[0]) {
    req->bufs = malloc(nbufs * sizeof *bufs);
    if (req->bufs == NULL)
      return EDDY_ENOMEM;
  }
  if (nbufs > 0)
    memcpy(req->bufs, bufs, nbufs * sizeof *bufs);
  req->file = file;
  size_t total = file.len;
  for (unsigned i = 0; i < nbufs; i++)
    total += bufs[i].len;
  req->stream = s;
  req->cb = cb;
  req->nbufs = nbufs;
  req->index = 0;
  req->status = 0;

  int was_empty = eddy__queue_empty(&s->write_queue);
  eddy__queue_insert_tail(&s->write_queue, &req->node);
  s->write_queue_size += total;
  s->handle.loop->active_reqs++;
  if (total == 0 && was_empty) {
    advance(s, 0); /* nothing to send: done at once */
    schedule_pending(s);
  } else if (was_empty && !(s->sflags & EDDY__SF_CONNECTING)) {
    s->sflags |= EDDY__SF_IN_WRITE;
    s->handle.loop->backend->write(s->handle.loop, &s->sio);
    s->sflags &= ~EDDY__SF_IN_WRITE;
  }
  if (s->write_queue_size >= s->high_water_mark) {
    s->sflags |= EDDY__SF_NEED_DRAIN;
    return EDDY_STREAM_FULL;
  }
  return 0;
}

ssize_t eddy_try_write(eddy_stream_t *s, const eddy_buf_t bufs[],
                       unsigned nbufs) {
  EDDY__MISUSE(eddy__handle_closing(&s->handle), EDDY_EINVAL);
  if (bufs == NULL || nbufs == 0 || nbufs > 1024)
    return EDDY_EINVAL;
  if (s->sio.io.fd < 0)
    return EDDY_EBADF;
  if (s->sflags & (EDDY__SF_SHUTTING | EDDY__SF_SHUT))
    return EDDY_EPIPE;
  if (!eddy__queue_empty(&s->write_queue) ||
      (s->sflags & EDDY__SF_CONNECTING))
    return EDDY_EAGAIN; /* order: queued bytes go first */
  struct msghdr msg = {.msg_iov = (struct iovec *)bufs, .msg_iovlen = nbufs};
  ssize_t n;
  /* eddy_buf_t is {base, len}, laid out as struct iovec. */
  _Static_assert(sizeof(eddy_buf_t) == sizeof(struct iovec), "iovec layout");
  do
    n = sendmsg(s->sio.io.fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == ENOTSOCK)
    n = writev(s->sio.io.fd, (const struct iovec *)bufs, (int)nbufs);
  if (n < 0)
    return errno == EWOULDBLOCK ? EDDY_EAGAIN : -errno;
  return n;
}

int eddy_shutdown(eddy_shutdown_t *req, eddy_stream_t *s, eddy_shutdown_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&s->handle), EDDY_EINVAL);
  if (req == NULL)
    return EDDY_EINVAL;
  if (s->sio.io.fd < 0 || (s->sflags & EDDY__SF_LISTENING))
    return EDDY_ENOTCONN;
  if (s->sflags & (EDDY__SF_SHUTTING | EDDY__SF_SHUT))
    return EDDY_EALREADY;
  req->stream = s;
  req->cb = cb;
  s->shutdown_req = req;
  s->sflags |= EDDY__SF_SHUTTING;
  s->handle.loop->active_reqs++;
  if (eddy__queue_empty(&s->write_queue))
    schedule_pending(s); /* never inside this call */
  return 0;
}

void eddy_stream_set_drain_cb(eddy_stream_t *s, eddy_drain_cb cb) {
  s->drain_cb = cb;
}

int eddy_stream_is_readable(const eddy_stream_t *s) {
  return s->sio.io.fd >= 0 && !(s->sflags & EDDY__SF_READ_EOF) &&
         !(s->sflags & EDDY__SF_LISTENING);
}

int eddy_stream_is_writable(const eddy_stream_t *s) {
  return s->sio.io.fd >= 0 &&
         !(s->sflags & (EDDY__SF_SHUTTING | EDDY__SF_SHUT |
                        EDDY__SF_LISTENING)) &&
         s->error == 0;
}

int eddy_stream_fd(const eddy_stream_t *s) {
  return s->sio.io.fd >= 0 ? s->sio.io.fd : EDDY_EBADF;
}

/* ---- Reading ------------------------------------------------------------- */

static void on_read(eddy__sio_t *sio, long nread, eddy_slice_t *slice) {
  eddy_stream_t *s = sio_stream(sio);
  eddy_loop_t *loop = s->handle.loop;

  if (nread < 0) {
    /* EOF or an error ends reading; the callback hears it once. */
    s->sflags &= ~EDDY__SF_READING;
    if (nread == EDDY_EOF)
      s->sflags |= EDDY__SF_READ_EOF;
    loop->backend->read_stop(loop, sio);
    update_active(s);
    s->read_cb(s, nread, NULL);
  } else {
    s->sflags |= EDDY__SF_IN_READ;
    s->read_cb(s, nread, slice);
    s->sflags &= ~EDDY__SF_IN_READ;
  }
  eddy__after_callback(loop);
  if (!eddy__queue_empty(&s->write_done) || (s->sflags & EDDY__SF_NEED_DRAIN))
    flush_done(s);
}

int eddy_read_start(eddy_stream_t *s, eddy_read_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&s->handle), EDDY_EINVAL);
  if (cb == NULL)
    return EDDY_EINVAL;
  if (s->sio.io.fd < 0 || (s->sflags & EDDY__SF_LISTENING))
    return EDDY_ENOTCONN;
  s->read_cb = cb;
  if (s->sflags & EDDY__SF_READING)
    return 0;
  int err = s->handle.loop->backend->read_start(s->handle.loop, &s->sio);
  if (err != 0)
    return err;
  s->sflags |= EDDY__SF_READING;
  update_active(s);
  return 0;
}

int eddy_read_stop(eddy_stream_t *s) {
  if (!(s->sflags & EDDY__SF_READING))
    return 0;
  s->sflags &= ~EDDY__SF_READING;
  s->handle.loop->backend->read_stop(s->handle.loop, &s->sio);
  update_active(s);
  return 0;
}

/* ---- Listening ------------------------------------------------------------ */

static void on_accept(eddy__sio_t *sio, int fd) {
  eddy_stream_t *s = sio_stream(sio);
  eddy_loop_t *loop = s->handle.loop;

  if (fd < 0) {
    if (fd == EDDY_EMFILE || fd == EDDY_ENFILE)
      shed_connections(sio->io.fd);
    s->connection_cb(s, fd);
    eddy__after_callback(loop);
    return;
  }
  s->accepted_fd = fd;
  s->connection_cb(s, 0);
  eddy__after_callback(loop);
  /* Not taken: stop accepting until eddy_accept takes it. */
  if (s->accepted_fd >= 0 && (s->sflags & EDDY__SF_LISTENING))
    loop->backend->accept_stop(loop, sio);
}

int eddy_listen(eddy_stream_t *s, int backlog, eddy_connection_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&s->handle), EDDY_EINVAL);
  if (cb == NULL)
    return EDDY_EINVAL;
  if (s->sio.io.fd < 0)
    return EDDY_EBADF; /* bind first */
  if (s->sflags & EDDY__SF_LISTENING)
    return EDDY_EALREADY;
  if (listen(s->sio.io.fd, backlog > 0 ? backlog : SOMAXCONN) != 0)
    return -errno;
  reserve_open();
  s->connection_cb = cb;
  int err = s->handle.loop->backend->accept_start(s->handle.loop, &s->sio);
  if (err != 0)
    return err;
  s->sflags |= EDDY__SF_LISTENING;
  update_active(s);
  return 0;
}

int eddy_accept(eddy_stream_t *server, eddy_stream_t *client) {
  if (server == NULL || client == NULL)
    return EDDY_EINVAL;
  if (server->accepted_fd < 0)
    return EDDY_EAGAIN;
  if (client->handle.type != server->handle.type || client->sio.io.fd >= 0)
    return EDDY_EINVAL;
  int err = eddy__stream_open(client, server->accepted_fd);
  if (err != 0)
    return err;
  client->sflags |= EDDY__SF_CONNECTED;
  server->accepted_fd = -1;
  if ((server->sflags & EDDY__SF_LISTENING) &&
      !(server->sio.ops & EDDY__OP_ACCEPT))
    return server->handle.loop->backend->accept_start(server->handle.loop,
                                                      &server->sio);
  return 0;
}

/* ---- Connecting ----------------------------------------------------------- */

static void connect_done(eddy_stream_t *s, int status) {
  eddy_connect_t *req = s->connect_req;
  eddy_loop_t *loop = s->handle.loop;
  s->connect_req = NULL;
  s->sflags &= ~EDDY__SF_CONNECTING;
  if (status == 0)
    s->sflags |= EDDY__SF_CONNECTED;
  loop->active_reqs--;
  req->cb(req, status);
  eddy__after_callback(loop);
  if (eddy__handle_closing(&s->handle))
    return;
  /* Writes queued while connecting go out now, or fail with the error. */
  if (!eddy__queue_empty(&s->write_queue)) {
    if (status == 0) {
      loop->backend->write(loop, &s->sio);
    } else {
      s->error = status;
      fail_queue(s, status);
      flush_done(s);
    }
  }
}

static void on_connect(eddy__sio_t *sio, int status) {
  connect_done(sio_stream(sio), status);
}

int eddy__stream_connect(eddy_connect_t *req, eddy_stream_t *s,
                         const struct sockaddr *addr, socklen_t len,
                         eddy_connect_cb cb) {
  if (s->sflags & EDDY__SF_CONNECTING)
    return EDDY_EALREADY;
  if (s->sflags & (EDDY__SF_CONNECTED | EDDY__SF_LISTENING))
    return EDDY_EISCONN;
  req->stream = s;
  req->cb = cb;
  req->status = 0;
  int err = s->handle.loop->backend->connect(s->handle.loop, &s->sio, addr,
                                             len);
  s->connect_req = req;
  s->sflags |= EDDY__SF_CONNECTING;
  s->handle.loop->active_reqs++;
  if (err != 0) {
    /* Refused at once: the callback hears it in the pending phase. */
    req->status = err;
    schedule_pending(s);
  }
  return 0;
}

/* ---- Pending phase, open, close ------------------------------------------ */

static void stream_pending(eddy_loop_t *loop, eddy__pending_t *p) {
  eddy_stream_t *s = eddy__container_of(p, eddy_stream_t, pending);
  s->sflags &= ~EDDY__SF_PENDING;
  if (s->connect_req != NULL && s->connect_req->status != 0) {
    connect_done(s, s->connect_req->status);
    return;
  }
  flush_done(s); /* also runs a shutdown waiting for an empty queue */
}

static void stream_stop_hook(eddy_handle_t *h) {
  eddy_stream_t *s = (eddy_stream_t *)h;
  eddy_loop_t *loop = h->loop;

  s->sflags &= ~(EDDY__SF_READING | EDDY__SF_LISTENING);
  if (s->sio.io.fd >= 0) {
    loop->backend->sio_stop(loop, &s->sio);
    close(s->sio.io.fd);
    s->sio.io.fd = -1;
  }
  if (s->accepted_fd >= 0) {
    close(s->accepted_fd);
    s->accepted_fd = -1;
  }
  if (s->sflags & EDDY__SF_PENDING) {
    eddy__queue_remove(&s->pending.node);
    s->sflags &= ~EDDY__SF_PENDING;
  }
  fail_queue(s, EDDY_ECANCELED);
}

/* In the close phase, before close_cb: every request still owed a callback
 * hears its end (cancelled, or its real status if it finished). */
static void stream_finish_hook(eddy_handle_t *h) {
  eddy_stream_t *s = (eddy_stream_t *)h;
  eddy_loop_t *loop = h->loop;

  flush_done(s);
  if (s->connect_req != NULL) {
    eddy_connect_t *req = s->connect_req;
    s->connect_req = NULL;
    loop->active_reqs--;
    req->cb(req, EDDY_ECANCELED);
    eddy__after_callback(loop);
  }
  if (s->shutdown_req != NULL) {
    eddy_shutdown_t *req = s->shutdown_req;
    s->shutdown_req = NULL;
    loop->active_reqs--;
    if (req->cb != NULL) {
      req->cb(req, EDDY_ECANCELED);
      eddy__after_callback(loop);
    }
  }
}

static int stream_busy_hook(eddy_handle_t *h) {
  eddy_stream_t *s = (eddy_stream_t *)h;
  return h->loop->backend->sio_busy(h->loop, &s->sio);
}

void eddy__stream_init(eddy_loop_t *loop, eddy_stream_t *s,
                       eddy_handle_type type) {
  eddy__handle_init(loop, &s->handle, type);
  s->handle.stop_hook = stream_stop_hook;
  s->handle.finish_hook = stream_finish_hook;
  s->handle.busy_hook = stream_busy_hook;
  s->write_queue_size = 0;
  s->high_water_mark = EDDY_STREAM_HIGH_WATER_MARK;
  memset(&s->sio, 0, sizeof s->sio);
  eddy__io_init(&s->sio.io, NULL, -1);
  s->sio.on_accept = on_accept;
  s->sio.on_read = on_read;
  s->sio.fill_iov = fill_iov;
  s->sio.on_written = on_written;
  s->sio.on_connect = on_connect;
  s->read_cb = NULL;
  s->connection_cb = NULL;
  s->drain_cb = NULL;
  eddy__queue_init(&s->write_queue);
  eddy__queue_init(&s->write_done);
  s->pending.cb = stream_pending;
  eddy__queue_init(&s->pending.node);
  s->connect_req = NULL;
  s->shutdown_req = NULL;
  s->accepted_fd = -1;
  s->error = 0;
  s->sflags = 0;
  s->pipe_out = NULL;
  s->pipe_in = NULL;
}

int eddy__stream_open(eddy_stream_t *s, int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return -errno;
  s->sio.io.fd = fd;
  return 0;
}
