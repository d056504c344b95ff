/* A connection's life: reading and parsing, the response queue that keeps
 * answers in request order, request bodies delivered or held, timeouts,
 * and the three ways out: an idle close, a lingering close after the last
 * response, an abort.
 *
 * User code runs from four places: the request callback (inside llhttp),
 * body callbacks (inside llhttp, or from conn_tick), drain and abort
 * callbacks.  While one runs, its exchange is BUSY: eddy_http_end inside
 * it marks the exchange done but the release waits until the callback
 * returns, so the code around the callback never touches freed memory.
 * The connection itself is freed only in its close callback, in the close
 * phase, so it outlives every callback of the iteration. */
#include <string.h>

#include "net/http/internal.h"

static void conn_on_read(eddy_stream_t *s, ssize_t nread,
                         const eddy_slice_t *buf);

/* ---- Exchanges ----------------------------------------------------------- */

void eddy__http_exch_maybe_release(eddy__http_exch_t *e) {
  if (!(e->flags & EDDY__X_USER_DONE) ||
      (e->flags & (EDDY__X_QUEUED | EDDY__X_BUSY)))
    return;
  if (e->conn != NULL && e->conn->parsing == e)
    return;
  eddy__http_exch_put(e->srv, e);
}

void eddy__http_queue_push(eddy__http_conn_t *c, eddy__http_exch_t *e) {
  e->flags |= EDDY__X_QUEUED;
  e->next = NULL;
  if (c->last != NULL)
    c->last->next = e;
  else
    c->first = e;
  c->last = e;
}

/* Unlinks every queued exchange from a connection that will not answer
 * them; returns them as a list for notify_aborted. */
static eddy__http_exch_t *queue_take(eddy__http_conn_t *c) {
  eddy__http_exch_t *list = c->first;
  c->first = c->last = NULL;
  for (eddy__http_exch_t *e = list; e != NULL; e = e->next) {
    e->conn = NULL;
    e->flags &= ~EDDY__X_QUEUED;
    eddy__http_drop_held(e);
    eddy__http_out_free(e->srv, &e->out);
  }
  return list;
}

/* A reader hears err even while paused: a paused body would otherwise
 * wait forever for a connection that is gone. */
static void notify_one(eddy__http_exch_t *e, int err) {
  e->flags |= EDDY__X_BUSY;
  if (e->body_cb != NULL && !(e->flags & EDDY__X_EOF_SENT)) {
    e->flags |= EDDY__X_EOF_SENT;
    e->body_cb(&e->req, err, NULL);
  }
  e->flags |= EDDY__X_MSG_DONE | EDDY__X_ENDED;
  if (!(e->flags & EDDY__X_USER_DONE) && e->abort_cb != NULL)
    e->abort_cb(&e->res, err);
  e->flags &= ~EDDY__X_BUSY;
}

/* The application hears, once, that these requests will not be answered;
 * it still ends each one. */
static void notify_aborted(eddy__http_exch_t *list, int err) {
  while (list != NULL) {
    eddy__http_exch_t *e = list;
    list = e->next;
    e->next = NULL;
    if (!(e->flags & EDDY__X_USER_DONE))
      notify_one(e, err);
    eddy__http_exch_maybe_release(e);
  }
}

/* Front responses that are complete leave the queue; the next one's
 * buffered output joins the connection's. */
void eddy__http_queue_advance(eddy__http_conn_t *c) {
  eddy__http_exch_t *e;
  while ((e = c->first) != NULL && (e->flags & EDDY__X_ENDED)) {
    c->first = e->next;
    if (c->first == NULL)
      c->last = NULL;
    e->next = NULL;
    e->flags &= ~EDDY__X_QUEUED;
    if (e->flags & EDDY__X_CLOSE) {
      /* The connection ends with this response: what was asked after it
       * will not be answered. */
      eddy__http_stop_parsing(c);
      eddy__http_exch_t *rest = queue_take(c);
      eddy__http_exch_maybe_release(e);
      notify_aborted(rest, EDDY_ECONNABORTED);
      return;
    }
    eddy__http_exch_maybe_release(e);
    if (c->first != NULL)
      eddy__http_out_move(&c->out, &c->first->out);
  }
}

/* ---- Bodies -------------------------------------------------------------- */

void eddy__http_drop_held(eddy__http_exch_t *e) {
  if (e->held.owner == NULL)
    return;
  eddy_slice_release(&e->held);
  e->held = (eddy_slice_t){0};
  e->held_cap = 0;
}

/* Keeps body bytes nobody reads yet: the read buffer is retained while
 * the pieces are contiguous in it (a Content-Length body), else they are
 * copied together. */
static int hold(eddy__http_exch_t *e, const char *at, size_t len) {
  const eddy_slice_t *region = e->conn->region;
  if (e->held.owner == NULL) {
    e->held = *region;
    e->held.base = (char *)at;
    e->held.len = len;
    eddy_slice_retain(&e->held);
    return 0;
  }
  if (e->held_cap == 0 && e->held.owner == region->owner &&
      e->held.base + e->held.len == at) {
    e->held.len += len;
    return 0;
  }
  size_t need = e->held.len + len;
  if (need > e->held_cap) {
    size_t cap = need < 2 * e->held_cap ? 2 * e->held_cap : need;
    eddy_slice_t s;
    if (eddy_slice_alloc(e->srv->loop, cap, &s) != 0)
      return -1;
    memcpy(s.base, e->held.base, e->held.len);
    s.len = e->held.len;
    eddy_slice_release(&e->held);
    e->held = s;
    e->held_cap = cap;
  }
  memcpy(e->held.base + e->held.len, at, len);
  e->held.len += len;
  return 0;
}

int eddy__http_body(eddy__http_exch_t *e, const char *at, size_t len) {
  if (e->flags & EDDY__X_USER_DONE)
    return 0; /* the response ended: the rest of the body is dropped */
  if ((e->flags & EDDY__X_READING) && e->held.owner == NULL) {
    eddy_slice_t s = *e->conn->region;
    s.base = (char *)at;
    s.len = len;
    e->flags |= EDDY__X_BUSY;
    e->body_cb(&e->req, (ssize_t)len, &s);
    e->flags &= ~EDDY__X_BUSY;
    eddy__http_exch_maybe_release(e);
    return 0;
  }
  return hold(e, at, len);
}

/* The body will not complete: the reader hears err after what is held. */
static void body_fail(eddy__http_exch_t *e, int err) {
  if (e->flags & (EDDY__X_MSG_DONE | EDDY__X_USER_DONE)) {
    e->flags |= EDDY__X_MSG_DONE;
    return;
  }
  e->flags |= EDDY__X_MSG_DONE;
  e->body_err = err;
  if (e->flags & EDDY__X_READING)
    eddy__http_schedule(e->conn);
}

void eddy__http_message_done(eddy__http_conn_t *c) {
  eddy__http_exch_t *e = c->parsing;
  if (e == NULL)
    return;
  c->parsing = NULL;
  e->flags |= EDDY__X_MSG_DONE;
  if ((e->flags & (EDDY__X_READING | EDDY__X_USER_DONE | EDDY__X_EOF_SENT)) ==
          EDDY__X_READING &&
      e->held.owner == NULL) {
    e->flags |= EDDY__X_EOF_SENT | EDDY__X_BUSY;
    e->body_cb(&e->req, EDDY_EOF, NULL);
    e->flags &= ~EDDY__X_BUSY;
  }
  eddy__http_exch_maybe_release(e);
}

static int deliverable(const eddy__http_exch_t *e) {
  if ((e->flags & (EDDY__X_READING | EDDY__X_USER_DONE)) != EDDY__X_READING)
    return 0;
  return e->held.owner != NULL ||
         (e->flags & (EDDY__X_MSG_DONE | EDDY__X_EOF_SENT)) == EDDY__X_MSG_DONE;
}

/* Held bytes, then the end (or the error) if the body is complete. */
static void deliver(eddy__http_exch_t *e) {
  e->flags |= EDDY__X_BUSY;
  if (e->held.owner != NULL) {
    eddy_slice_t s = e->held;
    e->held = (eddy_slice_t){0};
    e->held_cap = 0;
    e->body_cb(&e->req, (ssize_t)s.len, &s);
    eddy_slice_release(&s);
  }
  if (deliverable(e) && e->held.owner == NULL) {
    e->flags |= EDDY__X_EOF_SENT;
    e->body_cb(&e->req, e->body_err != 0 ? e->body_err : EDDY_EOF, NULL);
  }
  e->flags &= ~EDDY__X_BUSY;
  eddy__http_exch_maybe_release(e);
}

/* A callback may end or release any exchange: start over after each. */
static void deliver_all(eddy__http_conn_t *c) {
  for (;;) {
    eddy__http_exch_t *e = c->first;
    while (e != NULL && !deliverable(e))
      e = e->next;
    if (e == NULL || (c->flags & EDDY__C_CLOSING))
      return;
    deliver(e);
  }
}

static int holding(const eddy__http_conn_t *c) {
  for (const eddy__http_exch_t *e = c->first; e != NULL; e = e->next)
    if (e->held.owner != NULL)
      return 1;
  return 0;
}

/* ---- Stopping ------------------------------------------------------------ */

void eddy__http_stop_parsing(eddy__http_conn_t *c) {
  c->flags |= EDDY__C_DISCARD | EDDY__C_NO_MORE;
  eddy_slice_release(&c->partial);
  c->partial = (eddy_slice_t){0};
  c->partial_len = 0;
  eddy__http_exch_t *e = c->parsing;
  if (e == NULL)
    return;
  c->parsing = NULL;
  if (!(e->flags & EDDY__X_HANDED)) {
    eddy__http_timer_stop(c); /* the head will never complete */
    e->flags |= EDDY__X_USER_DONE;
  } else {
    body_fail(e, EDDY_ECONNRESET);
  }
  eddy__http_exch_maybe_release(e);
}

void eddy__http_reject(eddy__http_conn_t *c, int status) {
  eddy__http_exch_t *e = c->parsing;
  c->srv->stats.rejected++;
  c->parsing = NULL; /* keeps stop_parsing from releasing it */
  eddy__http_stop_parsing(c);
  eddy__http_timer_stop(c);
  if (e == NULL) {
    e = eddy__http_exch_get(c->srv);
    if (e == NULL) {
      eddy__http_conn_abort(c, EDDY_ENOMEM);
      return;
    }
    e->conn = c;
  }
  if (!(e->flags & EDDY__X_HANDED)) {
    e->flags |= EDDY__X_USER_DONE | EDDY__X_MSG_DONE;
    eddy__http_queue_push(c, e);
    eddy__http_error_response(e, status);
    eddy__http_queue_advance(c);
    return;
  }
  /* A request the application has: its body failed.  The server answers
   * in its place unless the response has begun, and the application hears
   * it now (it may have left the queue by the time a tick would run). */
  int err = status == 413 ? EDDY_EMSGSIZE : EDDY_EPROTO;
  body_fail(e, err);
  eddy__http_drop_held(e);
  if (!(e->flags & (EDDY__X_HEAD_SENT | EDDY__X_ENDED)))
    eddy__http_error_response(e, status);
  else
    e->flags |= EDDY__X_ENDED | EDDY__X_CLOSE;
  e->flags |= EDDY__X_BUSY;
  eddy__http_queue_advance(c);
  if (!(e->flags & EDDY__X_USER_DONE))
    notify_one(e, err);
  e->flags &= ~EDDY__X_BUSY;
  eddy__http_exch_maybe_release(e);
}

void eddy__http_conn_abort(eddy__http_conn_t *c, int err) {
  if (c->flags & EDDY__C_CLOSING)
    return;
  eddy__http_stop_parsing(c);
  eddy__http_exch_t *list = queue_take(c);
  eddy__http_conn_close(c);
  notify_aborted(list, err);
}

int eddy__http_is_idle(const eddy__http_conn_t *c) {
  return c->first == NULL && c->parsing == NULL && c->out.head == NULL &&
         c->writes == 0;
}

/* Closes the connection once it has nothing left to do, or marks it idle. */
void eddy__http_maybe_finish(eddy__http_conn_t *c) {
  if ((c->flags & EDDY__C_CLOSING) || c->first != NULL || c->out.head != NULL ||
      c->writes != 0)
    return;
  if (c->parsing != NULL)
    return; /* a request is arriving */
  if (!(c->flags & (EDDY__C_NO_MORE | EDDY__C_READ_EOF))) {
    if (eddy__queue_empty(&c->tnode))
      eddy__http_timer_set(c, &c->srv->idle_list);
    return;
  }
  if (c->flags & EDDY__C_READ_EOF) {
    eddy__http_conn_close(c);
    return;
  }
  if (c->flags & EDDY__C_SHUTDOWN)
    return;
  /* Our side is done.  Closing now could reset the connection under a
   * response the client has not read yet (unread bytes turn close into
   * RST); instead send FIN and drop what still arrives, for a while. */
  c->flags |= EDDY__C_SHUTDOWN | EDDY__C_DISCARD;
  if (eddy_shutdown(&c->sd, &c->s.stream, NULL) != 0) {
    eddy__http_conn_close(c);
    return;
  }
  eddy__http_timer_set(c, &c->srv->linger_list);
}

/* ---- I/O ----------------------------------------------------------------- */

static void update_reading(eddy__http_conn_t *c) {
  if (c->flags & (EDDY__C_CLOSING | EDDY__C_READ_EOF))
    return;
  int want = (c->flags & EDDY__C_DISCARD) ||
             (!(c->flags & EDDY__C_OUT_FULL) && !holding(c));
  if (!want)
    eddy_read_stop(&c->s.stream);
  else if (eddy_read_start(&c->s.stream, conn_on_read) != 0)
    eddy__http_conn_abort(c, EDDY_EIO);
}

static void head_drain(eddy__http_conn_t *c) {
  eddy__http_exch_t *e = c->first;
  if (e == NULL || !(e->flags & EDDY__X_NEED_DRAIN) ||
      eddy__http_queued(e) >= c->s.stream.high_water_mark)
    return;
  e->flags &= ~EDDY__X_NEED_DRAIN;
  if (e->drain_cb == NULL || (e->flags & EDDY__X_USER_DONE))
    return;
  e->flags |= EDDY__X_BUSY;
  e->drain_cb(&e->res);
  e->flags &= ~EDDY__X_BUSY;
  eddy__http_exch_maybe_release(e);
}

/* After reading, writing, or a tick: send what is ready, read again if
 * nothing holds us back, tell a waiting writer, close if done. */
static void after_io(eddy__http_conn_t *c) {
  if (c->out.head != NULL && !(c->flags & EDDY__C_CLOSING))
    eddy__http_flush(c);
  if (c->flags & EDDY__C_CLOSING)
    return;
  update_reading(c);
  head_drain(c);
  eddy__http_maybe_finish(c);
}

static void conn_tick(void *arg) {
  eddy__http_conn_t *c = arg;
  c->ticks--;
  c->flags &= ~EDDY__C_TICK;
  if (c->flags & EDDY__C_FREE_LATER) {
    if (c->ticks == 0)
      eddy__http_conn_release(c);
    return;
  }
  if (c->flags & EDDY__C_CLOSING)
    return;
  deliver_all(c);
  after_io(c);
}

void eddy__http_schedule(eddy__http_conn_t *c) {
  if (c->flags & (EDDY__C_TICK | EDDY__C_CLOSING))
    return;
  if (eddy_next_tick(c->srv->loop, conn_tick, c) != 0) {
    eddy__http_flush(c); /* out of memory for the queue: write now */
    return;
  }
  c->flags |= EDDY__C_TICK;
  c->ticks++;
}

void eddy__http_want_flush(eddy__http_conn_t *c) {
  if (!(c->flags & EDDY__C_IN_READ))
    eddy__http_schedule(c); /* the read callback flushes when it ends */
}

static void rebase(eddy_http_str_t *s, uintptr_t lo, uintptr_t hi,
                   ptrdiff_t d) {
  if ((uintptr_t)s->base >= lo && (uintptr_t)s->base <= hi)
    s->base += d;
}

/* A request that outlives its read gets its own copy of the head, so a
 * slow handler pins a few hundred bytes instead of a 64 KB read block. */
static void head_compact(eddy__http_exch_t *e) {
  eddy_slice_t s;
  e->flags |= EDDY__X_COMPACT;
  if (e->head.owner == NULL || e->head.len == 0 ||
      eddy_slice_alloc(e->srv->loop, e->head.len, &s) != 0)
    return; /* keeping the read buffer is fine too */
  memcpy(s.base, e->head.base, e->head.len);
  uintptr_t lo = (uintptr_t)e->head.base, hi = lo + e->head.len;
  ptrdiff_t d = s.base - e->head.base;
  rebase(&e->req.method_name, lo, hi, d);
  rebase(&e->req.target, lo, hi, d);
  rebase(&e->req.path, lo, hi, d);
  rebase(&e->req.query, lo, hi, d);
  for (size_t i = 0; i < e->req.nheaders; i++) {
    rebase(&e->hdrs[i].name, lo, hi, d);
    rebase(&e->hdrs[i].value, lo, hi, d);
  }
  eddy_slice_release(&e->head);
  e->head = s;
}

/* The client will send nothing more (EOF), or the connection broke. */
static void read_ended(eddy__http_conn_t *c, int err) {
  c->flags |= EDDY__C_READ_EOF;
  if (err != EDDY_EOF) {
    eddy__http_conn_abort(c, err);
    return;
  }
  if (c->flags & EDDY__C_SHUTDOWN) {
    eddy__http_conn_close(c); /* lingering is over */
    return;
  }
  /* A half-closed client still reads the answers to what it sent. */
  eddy__http_stop_parsing(c);
  after_io(c);
}

/* Body bytes held in the read buffer get a copy of their own when the
 * read callback ends: a paused request must not pin the backend's read
 * buffers (io_uring lends a few from a ring shared by every connection). */
static void held_compact(eddy__http_exch_t *e, const eddy_slice_t *buf) {
  eddy_slice_t s;
  if (e->held.owner != buf->owner || e->held_cap != 0 ||
      eddy_slice_alloc(e->srv->loop, e->held.len, &s) != 0)
    return;
  memcpy(s.base, e->held.base, e->held.len);
  eddy_slice_release(&e->held);
  e->held = s;
  e->held_cap = s.len;
}

static void conn_on_read(eddy_stream_t *s, ssize_t nread,
                         const eddy_slice_t *buf) {
  eddy__http_conn_t *c = (eddy__http_conn_t *)s;
  if (nread < 0) {
    read_ended(c, (int)nread);
    return;
  }
  if (c->flags & EDDY__C_DISCARD)
    return;
  c->flags |= EDDY__C_IN_READ;
  eddy__http_parse(c, buf, (size_t)nread);
  c->flags &= ~EDDY__C_IN_READ;
  for (eddy__http_exch_t *e = c->first; e != NULL; e = e->next) {
    if ((e->flags & (EDDY__X_HANDED | EDDY__X_COMPACT)) == EDDY__X_HANDED)
      head_compact(e);
    if (e->held.owner != NULL)
      held_compact(e, buf);
  }
  after_io(c);
}

static void conn_on_drain(eddy_stream_t *s) {
  eddy__http_conn_t *c = (eddy__http_conn_t *)s;
  c->flags &= ~EDDY__C_OUT_FULL;
  after_io(c);
}

void eddy__http_written(eddy__http_conn_t *c, int status) {
  c->writes--;
  if (c->flags & EDDY__C_CLOSING)
    return;
  if (status < 0)
    eddy__http_conn_abort(c, status);
  else
    after_io(c);
}

void eddy__http_timeout(eddy__http_conn_t *c, eddy_queue_t *list) {
  if (list != &c->srv->head_list) {
    eddy__http_conn_close(c); /* idle, or done lingering */
    return;
  }
  eddy__http_reject(c, 408);
  after_io(c);
}

void eddy__http_conn_start(eddy__http_conn_t *c) {
  eddy_stream_set_drain_cb(&c->s.stream, conn_on_drain);
  if (eddy_read_start(&c->s.stream, conn_on_read) != 0) {
    eddy__http_conn_close(c);
    return;
  }
  eddy__http_timer_set(c, &c->srv->idle_list);
}
