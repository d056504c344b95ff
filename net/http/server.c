/* The HTTP server: listeners and accepting, the pools that keep requests
 * from allocating, the Date and timeout timers, graceful close.
 *
 * Timeouts cost no timer per connection.  Each timeout list (idle
 * keep-alive, headers, linger) has one duration, so a connection appended
 * when it enters a list keeps the list sorted by deadline: one sweep timer
 * per server, armed for the earliest head, expires the heads. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "net/http/internal.h"

typedef struct {
  union {
    eddy_stream_t stream;
    eddy_tcp_t tcp;
    eddy_unix_t un;
  } s; /* first: the handle */
  eddy_http_server_t *srv;
  eddy_queue_t node;
} listener_t;

void eddy_http_server_options_init(eddy_http_server_options_t *o) {
  o->max_header_size = 16384;
  o->max_body_size = 1024 * 1024;
  o->headers_timeout_ms = 10000;
  o->keepalive_timeout_ms = 5000;
  o->linger_timeout_ms = 2000;
  o->backlog = 511;
}

/* ---- Pools --------------------------------------------------------------- */

eddy__http_exch_t *eddy__http_exch_get(eddy_http_server_t *srv) {
  eddy__http_exch_t *e = srv->free_exchanges;
  if (e != NULL) {
    srv->free_exchanges = e->next;
    srv->nfree_exchanges--;
  } else {
    e = malloc(sizeof *e);
    if (e == NULL)
      return NULL;
    e->hdrs = e->inline_hdrs;
    e->caphdrs = EDDY__HTTP_INLINE_HEADERS;
    e->stage = e->stage_inline;
    e->stage_cap = sizeof e->stage_inline;
  }
  /* The rest of req is filled in when the head is complete. */
  e->req.data = NULL;
  e->req.server = srv;
  e->req.headers = e->hdrs;
  e->req.nheaders = 0;
  e->req.content_length = -1;
  e->res.data = NULL;
  e->res.req = &e->req;
  e->conn = NULL;
  e->srv = srv;
  e->next = NULL;
  e->flags = 0;
  e->status = 200;
  e->body_err = 0;
  e->head = (eddy_slice_t){0};
  e->body_bytes = 0;
  e->cl_left = 0;
  e->body_cb = NULL;
  e->drain_cb = NULL;
  e->abort_cb = NULL;
  e->held = (eddy_slice_t){0};
  e->held_cap = 0;
  e->out = (eddy__http_out_t){0};
  e->stage_len = 0;
  srv->live_exchanges++;
  return e;
}

void eddy__http_exch_put(eddy_http_server_t *srv, eddy__http_exch_t *e) {
  eddy_slice_release(&e->head);
  eddy__http_drop_held(e);
  eddy__http_out_free(srv, &e->out);
  /* Keep pooled exchanges small: big header arrays go back to malloc. */
  if (e->hdrs != e->inline_hdrs) {
    free(e->hdrs);
    e->hdrs = e->inline_hdrs;
    e->caphdrs = EDDY__HTTP_INLINE_HEADERS;
  }
  if (e->stage != e->stage_inline) {
    free(e->stage);
    e->stage = e->stage_inline;
    e->stage_cap = sizeof e->stage_inline;
  }
  srv->live_exchanges--;
  if (srv->nfree_exchanges < EDDY__HTTP_POOL_KEEP &&
      !(srv->flags & EDDY__S_CLOSING)) {
    e->next = srv->free_exchanges;
    srv->free_exchanges = e;
    srv->nfree_exchanges++;
  } else {
    free(e);
  }
  eddy__http_server_check_closed(srv);
}

eddy__http_batch_t *eddy__http_batch_get(eddy_http_server_t *srv) {
  eddy__http_batch_t *b = srv->free_batches;
  if (b != NULL) {
    srv->free_batches = b->next;
    srv->nfree_batches--;
  } else {
    b = malloc(sizeof *b);
    if (b == NULL)
      return NULL;
  }
  b->next = NULL;
  b->n = 0;
  return b;
}

void eddy__http_batch_put(eddy_http_server_t *srv, eddy__http_batch_t *b) {
  for (unsigned i = 0; i < b->n; i++)
    eddy_slice_release(&b->chunk[i]);
  b->n = 0;
  if (srv->nfree_batches < EDDY__HTTP_POOL_KEEP) {
    b->next = srv->free_batches;
    srv->free_batches = b;
    srv->nfree_batches++;
  } else {
    free(b);
  }
}

/* Closed connections wait here for the next accept, linked through the
 * (dead) handle's data field. */
static eddy__http_conn_t *conn_get(eddy_http_server_t *srv) {
  eddy__http_conn_t *c = srv->free_conns;
  if (c == NULL)
    return malloc(sizeof *c);
  srv->free_conns = c->s.stream.handle.data;
  srv->nfree_conns--;
  return c;
}

static void conn_put(eddy_http_server_t *srv, eddy__http_conn_t *c) {
  if (srv->nfree_conns >= EDDY__HTTP_POOL_KEEP ||
      (srv->flags & EDDY__S_CLOSING)) {
    free(c);
    return;
  }
  c->s.stream.handle.data = srv->free_conns;
  srv->free_conns = c;
  srv->nfree_conns++;
}

static void pools_free(eddy_http_server_t *srv) {
  while (srv->free_conns != NULL)
    free(conn_get(srv));
  while (srv->free_exchanges != NULL) {
    eddy__http_exch_t *e = srv->free_exchanges;
    srv->free_exchanges = e->next;
    free(e);
  }
  srv->nfree_exchanges = 0;
  while (srv->free_batches != NULL) {
    eddy__http_batch_t *b = srv->free_batches;
    srv->free_batches = b->next;
    free(b);
  }
  srv->nfree_batches = 0;
}

/* ---- Timeouts ------------------------------------------------------------ */

static uint64_t list_timeout(const eddy_http_server_t *srv,
                             const eddy_queue_t *list) {
  if (list == &srv->idle_list)
    return srv->opts.keepalive_timeout_ms;
  if (list == &srv->head_list)
    return srv->opts.headers_timeout_ms;
  return srv->opts.linger_timeout_ms;
}

static uint64_t list_due(const eddy_http_server_t *srv,
                         const eddy_queue_t *list) {
  if (eddy__queue_empty(list))
    return UINT64_MAX;
  eddy__http_conn_t *c =
      eddy__container_of(eddy__queue_head(list), eddy__http_conn_t, tnode);
  uint64_t t = list_timeout(srv, list);
  return c->since > UINT64_MAX - t ? UINT64_MAX : c->since + t;
}

static void sweep_cb(eddy_timer_t *t);

/* Arms the sweep timer for the earliest deadline, unless it is armed for
 * that or earlier already (it then re-arms itself when it fires). */
static void sweep_arm(eddy_http_server_t *srv) {
  uint64_t due = list_due(srv, &srv->idle_list);
  uint64_t d = list_due(srv, &srv->head_list);
  if (d < due)
    due = d;
  d = list_due(srv, &srv->linger_list);
  if (d < due)
    due = d;
  if (due == UINT64_MAX ||
      (eddy_is_active(&srv->sweep_timer.handle) && srv->sweep_due <= due))
    return;
  uint64_t now = eddy_now(srv->loop);
  srv->sweep_due = due;
  eddy_timer_start(&srv->sweep_timer, sweep_cb, due > now ? due - now : 0, 0);
}

void eddy__http_timer_set(eddy__http_conn_t *c, eddy_queue_t *list) {
  c->since = eddy_now(c->srv->loop);
  eddy__http_timer_keep(c, list);
}

/* Appending keeps a list sorted by deadline only if c->since is not
 * older than the tail's: callers join in the loop iteration that set it. */
void eddy__http_timer_keep(eddy__http_conn_t *c, eddy_queue_t *list) {
  eddy__queue_remove(&c->tnode);
  eddy__queue_insert_tail(list, &c->tnode);
  sweep_arm(c->srv);
}

void eddy__http_timer_stop(eddy__http_conn_t *c) {
  eddy__queue_remove(&c->tnode); /* the timer may fire for nothing: fine */
}

static void sweep_list(eddy_http_server_t *srv, eddy_queue_t *list,
                       uint64_t now) {
  while (list_due(srv, list) <= now) {
    eddy__http_conn_t *c =
        eddy__container_of(eddy__queue_head(list), eddy__http_conn_t, tnode);
    eddy__queue_remove(&c->tnode);
    eddy__http_timeout(c, list);
  }
}

static void sweep_cb(eddy_timer_t *t) {
  eddy_http_server_t *srv =
      eddy__container_of(t, eddy_http_server_t, sweep_timer);
  uint64_t now = eddy_now(srv->loop);
  sweep_list(srv, &srv->head_list, now);
  sweep_list(srv, &srv->idle_list, now);
  sweep_list(srv, &srv->linger_list, now);
  sweep_arm(srv);
}

/* ---- The Date header ----------------------------------------------------- */

/* Formats the Date line for this second; returns the milliseconds to the
 * next second, so the line changes when the wall clock's second does. */
static uint64_t date_refresh(eddy_http_server_t *srv) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  eddy__http_date_format(srv->date_line, (int64_t)ts.tv_sec);
  return 1000 - (uint64_t)ts.tv_nsec / 1000000;
}

static void date_cb(eddy_timer_t *t) {
  eddy_http_server_t *srv =
      eddy__container_of(t, eddy_http_server_t, date_timer);
  eddy_timer_start(t, date_cb, date_refresh(srv), 0);
}

/* ---- Connections --------------------------------------------------------- */

static void conn_closed(eddy_handle_t *h) {
  eddy__http_conn_t *c = (eddy__http_conn_t *)h;
  eddy_slice_release(&c->partial);
  c->partial = (eddy_slice_t){0};
  if (c->ticks != 0)
    c->flags |= EDDY__C_FREE_LATER; /* the last conn_tick frees it */
  else
    eddy__http_conn_release(c);
}

void eddy__http_conn_release(eddy__http_conn_t *c) {
  eddy_http_server_t *srv = c->srv;
  srv->closing_handles--;
  srv->stats.open_connections--;
  conn_put(srv, c);
  eddy__http_server_check_closed(srv);
}

void eddy__http_conn_close(eddy__http_conn_t *c) {
  if (c->flags & EDDY__C_CLOSING)
    return;
  c->flags |= EDDY__C_CLOSING;
  eddy__http_timer_stop(c);
  eddy__queue_remove(&c->node);
  eddy__http_out_free(c->srv, &c->out);
  c->srv->closing_handles++;
  eddy_close(&c->s.stream.handle, conn_closed);
}

static void conn_fields_init(eddy__http_conn_t *c, eddy_http_server_t *srv,
                             unsigned flags) {
  c->srv = srv;
  eddy__queue_init(&c->tnode);
  c->since = 0;
  c->first = c->last = c->parsing = NULL;
  c->region = NULL;
  c->head_base = NULL;
  c->partial = (eddy_slice_t){0};
  c->partial_len = 0;
  c->out = (eddy__http_out_t){0};
  c->cl = 0;
  c->extra = 0;
  c->writes = c->nheld = c->ticks = 0;
  c->flags = flags;
  c->pflags = 0;
  c->reject = 0;
  eddy__http_parser_init(c);
}

static void on_connection(eddy_stream_t *server, int status) {
  listener_t *l = (listener_t *)server;
  eddy_http_server_t *srv = l->srv;
  if (status < 0)
    return; /* shed at the descriptor limit: the listener goes on */
  eddy__http_conn_t *c = conn_get(srv);
  if (c == NULL)
    return; /* the connection waits until memory frees up */
  int is_unix = server->handle.type == EDDY_UNIX;
  if (is_unix)
    eddy_unix_init(srv->loop, &c->s.un);
  else
    eddy_tcp_init(srv->loop, &c->s.tcp);
  conn_fields_init(c, srv, is_unix ? EDDY__C_UNIX : 0);
  eddy__queue_init(&c->node);
  srv->stats.open_connections++;
  if (eddy_accept(server, &c->s.stream) != 0) {
    c->flags |= EDDY__C_CLOSING;
    srv->closing_handles++;
    eddy_close(&c->s.stream.handle, conn_closed);
    return;
  }
  /* Small responses must not wait for Nagle's algorithm. */
  if (!is_unix)
    eddy_tcp_nodelay(&c->s.tcp, 1);
  srv->stats.connections++;
  eddy__queue_insert_tail(&srv->conns, &c->node);
  eddy__http_conn_start(c);
}

/* ---- Listeners ----------------------------------------------------------- */

static void listener_closed(eddy_handle_t *h) {
  listener_t *l = (listener_t *)h;
  eddy_http_server_t *srv = l->srv;
  free(l);
  srv->closing_handles--;
  eddy__http_server_check_closed(srv);
}

static void listener_drop(listener_t *l) {
  eddy__queue_remove(&l->node);
  l->srv->closing_handles++;
  eddy_close(&l->s.stream.handle, listener_closed);
}

static int listener_new(eddy_http_server_t *srv, int is_unix,
                        listener_t **out) {
  EDDY__MISUSE(srv->flags & EDDY__S_CLOSING, EDDY_EINVAL);
  listener_t *l = malloc(sizeof *l);
  if (l == NULL)
    return EDDY_ENOMEM;
  if (is_unix)
    eddy_unix_init(srv->loop, &l->s.un);
  else
    eddy_tcp_init(srv->loop, &l->s.tcp);
  l->srv = srv;
  eddy__queue_insert_tail(&srv->listeners, &l->node);
  *out = l;
  return 0;
}

static int listener_start(listener_t *l, int err) {
  if (err == 0)
    err = eddy_listen(&l->s.stream, l->srv->opts.backlog, on_connection);
  if (err != 0)
    listener_drop(l);
  return err;
}

int eddy_http_server_listen(eddy_http_server_t *srv,
                            const struct sockaddr *addr, unsigned flags) {
  listener_t *l;
  if (srv == NULL || addr == NULL)
    return EDDY_EINVAL;
  int err = listener_new(srv, 0, &l);
  if (err != 0)
    return err;
  return listener_start(l, eddy_tcp_bind(&l->s.tcp, addr, flags));
}

int eddy_http_server_listen_unix(eddy_http_server_t *srv, const char *path) {
  listener_t *l;
  if (srv == NULL || path == NULL)
    return EDDY_EINVAL;
  int err = listener_new(srv, 1, &l);
  if (err != 0)
    return err;
  return listener_start(l, eddy_unix_bind(&l->s.un, path));
}

int eddy_http_server_address(const eddy_http_server_t *srv, unsigned index,
                             struct sockaddr_storage *addr) {
  if (srv == NULL || addr == NULL)
    return EDDY_EINVAL;
  for (eddy_queue_t *q = srv->listeners.next; q != &srv->listeners;
       q = q->next) {
    if (index-- != 0)
      continue;
    listener_t *l = eddy__container_of(q, listener_t, node);
    socklen_t len = sizeof *addr;
    memset(addr, 0, sizeof *addr);
    if (getsockname(eddy_stream_fd(&l->s.stream), (struct sockaddr *)addr,
                    &len) != 0)
      return -errno;
    return 0;
  }
  return EDDY_ENOENT;
}

/* ---- Server -------------------------------------------------------------- */

int eddy_http_server_init(eddy_loop_t *loop, eddy_http_server_t *srv,
                          const eddy_http_server_options_t *opts,
                          eddy_http_request_cb on_request) {
  if (loop == NULL || srv == NULL || on_request == NULL)
    return EDDY_EINVAL;
  memset(srv, 0, sizeof *srv);
  if (opts != NULL)
    srv->opts = *opts;
  else
    eddy_http_server_options_init(&srv->opts);
  if (srv->opts.max_header_size < 64 || srv->opts.max_header_size > (1 << 24))
    return EDDY_EINVAL;
  srv->loop = loop;
  srv->on_request = on_request;
  eddy__queue_init(&srv->listeners);
  eddy__queue_init(&srv->conns);
  eddy__queue_init(&srv->idle_list);
  eddy__queue_init(&srv->head_list);
  eddy__queue_init(&srv->linger_list);
  eddy_timer_init(loop, &srv->date_timer);
  eddy_timer_init(loop, &srv->sweep_timer);
  /* The server's listeners and connections keep the loop alive, not its
   * housekeeping. */
  eddy_unref(&srv->date_timer.handle);
  eddy_unref(&srv->sweep_timer.handle);
  eddy_timer_start(&srv->date_timer, date_cb, date_refresh(srv), 0);
  return 0;
}

static void timer_closed(eddy_handle_t *h) {
  eddy_http_server_t *srv = h->data;
  srv->closing_handles--;
  eddy__http_server_check_closed(srv);
}

/* The close callback runs once every listener and connection is closed
 * and every request was ended; the timers close last. */
void eddy__http_server_check_closed(eddy_http_server_t *srv) {
  if (!(srv->flags & EDDY__S_CLOSING) || !eddy__queue_empty(&srv->conns) ||
      srv->live_exchanges != 0)
    return;
  if (!(srv->flags & EDDY__S_TIMERS_CLOSED)) {
    srv->flags |= EDDY__S_TIMERS_CLOSED;
    srv->closing_handles += 2;
    srv->date_timer.handle.data = srv;
    srv->sweep_timer.handle.data = srv;
    eddy_close(&srv->date_timer.handle, timer_closed);
    eddy_close(&srv->sweep_timer.handle, timer_closed);
    return;
  }
  if (srv->closing_handles != 0)
    return;
  pools_free(srv);
  srv->flags &= ~EDDY__S_CLOSING; /* no second call */
  if (srv->close_cb != NULL)
    srv->close_cb(srv);
}

void eddy_http_server_close(eddy_http_server_t *srv,
                            eddy_http_close_cb close_cb) {
  assert(!(srv->flags & (EDDY__S_CLOSING | EDDY__S_TIMERS_CLOSED)) &&
         "server closed twice");
  if (srv->flags & (EDDY__S_CLOSING | EDDY__S_TIMERS_CLOSED))
    return;
  srv->flags |= EDDY__S_CLOSING;
  srv->close_cb = close_cb;
  while (!eddy__queue_empty(&srv->listeners))
    listener_drop(eddy__container_of(eddy__queue_head(&srv->listeners),
                                     listener_t, node));
  /* Closing a connection unlinks it: walk with the next one in hand. */
  eddy_queue_t *q = srv->conns.next;
  while (q != &srv->conns) {
    eddy__http_conn_t *c = eddy__container_of(q, eddy__http_conn_t, node);
    q = q->next;
    if (eddy__http_is_idle(c)) {
      eddy__http_conn_close(c);
    } else {
      c->flags |= EDDY__C_NO_MORE;
      eddy__http_maybe_finish(c);
    }
  }
  eddy__http_server_check_closed(srv);
}

void eddy_http_server_stats(const eddy_http_server_t *srv,
                            eddy_http_stats_t *out) {
  *out = srv->stats;
}
