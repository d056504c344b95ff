/* Request bodies as streams and response backpressure, over raw sockets:
 * a large body paused and resumed arrives intact, a body nobody reads yet
 * waits, an unread body is dropped without losing the connection,
 * Expect: 100-continue both ways, drain, abort. */
#include "http_helpers.h"

TestSuite(http_body, .timeout = 30);

#define BIG (8u << 20)

static http_fixture_t fx;
static tc_log_t got;
static tc_resp_t resp;

/* ---- A reader that pauses after every piece ------------------------------ */

static eddy_timer_t resume_timer;
static eddy_http_req_t *reading;
static size_t body_len, pauses, calls_while_paused;
static uint64_t body_hash;
static int paused;
static size_t slab_at_pause, slab_growth_paused;

static void answer_len_hash(eddy_http_res_t *res) {
  char out[64];
  int n = snprintf(out, sizeof out, "%zu %016llx", body_len,
                   (unsigned long long)body_hash);
  eddy_http_end(res, out, (size_t)n);
}

static void on_piece(eddy_http_req_t *req, ssize_t n, const eddy_slice_t *b);

static void resume(eddy_timer_t *t) {
  eddy_memory_usage_t mu;
  eddy_memory_usage(fx.srv.loop, &mu);
  if (mu.slab_used > slab_at_pause &&
      mu.slab_used - slab_at_pause > slab_growth_paused)
    slab_growth_paused = mu.slab_used - slab_at_pause;
  paused = 0;
  eddy_http_req_read_start(reading, on_piece);
}

static void on_piece(eddy_http_req_t *req, ssize_t n, const eddy_slice_t *b) {
  if (paused)
    calls_while_paused++;
  if (n < 0) {
    eddy_close(&resume_timer.handle, NULL);
    if (n == EDDY_EOF)
      answer_len_hash(req->data);
    else
      eddy_http_end(req->data, NULL, 0);
    return;
  }
  body_hash = fnv1a(body_hash, b->base, (size_t)n);
  body_len += (size_t)n;
  /* Pause; resume a moment later (once, 100 ms: the socket must stop). */
  eddy_memory_usage_t mu;
  eddy_memory_usage(fx.srv.loop, &mu);
  slab_at_pause = mu.slab_used;
  paused = 1;
  pauses++;
  eddy_http_req_read_stop(req);
  eddy_timer_start(&resume_timer, resume, pauses == 20 ? 100 : 1, 0);
}

static void pausing_app(eddy_http_req_t *req, eddy_http_res_t *res) {
  req->data = res;
  reading = req;
  body_hash = FNV_INIT;
  eddy_timer_init(fx.srv.loop, &resume_timer);
  eddy_http_req_read_start(req, on_piece);
}

static uint64_t sent_hash;

static void send_big(http_fixture_t *f) {
  static char chunk[65536];
  char head[128];
  int fd = tc_connect(f->port);
  int n = snprintf(head, sizeof head,
                   "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %u\r\n\r\n",
                   BIG);
  tc_send(fd, head, (size_t)n);
  sent_hash = FNV_INIT;
  for (size_t off = 0; off < BIG; off += sizeof chunk) {
    for (size_t i = 0; i < sizeof chunk; i++)
      chunk[i] = body_byte(off + i);
    sent_hash = fnv1a(sent_hash, chunk, sizeof chunk);
    tc_send(fd, chunk, sizeof chunk);
  }
  tc_read_n(fd, &got, 1, 0);
  close(fd);
}

EDDY_IO_TEST(http_body, large_body_paused_and_resumed_arrives_intact) {
  eddy_http_server_options_t o;
  eddy_http_server_options_init(&o);
  o.max_body_size = 64u << 20;
  http_start(&fx, *backend, &o, pausing_app);
  http_run(&fx, send_big);
  char want[64];
  snprintf(want, sizeof want, "%u %016llx", BIG, (unsigned long long)sent_hash);
  cr_assert(gt(sz, tc_parse(got.buf, got.len, &resp, 0), (size_t)0));
  cr_assert(eq(int, resp.status, 200));
  resp.body[resp.body_len] = '\0';
  cr_assert(eq(str, resp.body, want), "bytes differ end to end");
  cr_assert(gt(sz, pauses, (size_t)20));
  cr_assert(eq(sz, calls_while_paused, (size_t)0), "data while paused");
  /* While paused the server holds at most what it had read: reading stops. */
  cr_assert(lt(sz, slab_growth_paused, (size_t)(512 << 10)),
            "%zu bytes piled up while paused", slab_growth_paused);
}

/* ---- A body nobody reads yet --------------------------------------------- */

static eddy_timer_t later;

static void on_all(eddy_http_req_t *req, ssize_t n, const eddy_slice_t *b) {
  if (n > 0) {
    body_hash = fnv1a(body_hash, b->base, (size_t)n);
    body_len += (size_t)n;
  } else {
    answer_len_hash(req->data);
  }
}

static void read_now(eddy_timer_t *t) {
  eddy_http_req_read_start(reading, on_all);
  eddy_close(&t->handle, NULL);
}

/* /late: starts reading 100 ms later.  /ignore: answers without reading. */
static void late_app(eddy_http_req_t *req, eddy_http_res_t *res) {
  req->data = res;
  if (path_is(req, "/late")) {
    reading = req;
    body_len = 0;
    body_hash = FNV_INIT;
    eddy_timer_init(fx.srv.loop, &later);
    eddy_timer_start(&later, read_now, 100, 0);
  } else if (path_is(req, "/ignore")) {
    eddy_http_set_status(res, 401);
    eddy_http_end(res, "no", 2);
  } else {
    eddy_http_end(res, "hello world", 11);
  }
}

static void post_then_get(const char *path, size_t size, int fd) {
  static char body[300000];
  char head[160];
  int n = snprintf(head, sizeof head,
                   "POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n",
                   path, size);
  sent_hash = FNV_INIT;
  for (size_t i = 0; i < size; i++)
    body[i] = body_byte(i);
  sent_hash = fnv1a(sent_hash, body, size);
  tc_send(fd, head, (size_t)n);
  tc_send(fd, body, size);
  tc_sends(fd, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
}

static void late_client(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  post_then_get("/late", 300000, fd);
  tc_read_n(fd, &got, 2, 0);
  close(fd);
}

EDDY_IO_TEST(http_body, body_waits_until_the_handler_reads_it) {
  http_start(&fx, *backend, NULL, late_app);
  http_run(&fx, late_client);
  char want[64];
  snprintf(want, sizeof want, "300000 %016llx", (unsigned long long)sent_hash);
  size_t n = tc_parse(got.buf, got.len, &resp, 0);
  resp.body[resp.body_len] = '\0';
  cr_assert(eq(str, resp.body, want));
  cr_assert(gt(sz, tc_parse(got.buf + n, got.len - n, &resp, 0), (size_t)0),
            "the request after the body was not answered");
  cr_assert(eq(int, memcmp(resp.body, "hello world", 11), 0));
}

static void ignore_client(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  post_then_get("/ignore", 300000, fd);
  tc_read_n(fd, &got, 2, 0);
  close(fd);
}

EDDY_IO_TEST(http_body, unread_body_is_dropped_and_the_connection_kept) {
  http_start(&fx, *backend, NULL, late_app);
  http_run(&fx, ignore_client);
  size_t n = tc_parse(got.buf, got.len, &resp, 0);
  cr_assert(eq(int, resp.status, 401));
  cr_assert(gt(sz, tc_parse(got.buf + n, got.len - n, &resp, 0), (size_t)0));
  cr_assert(eq(int, resp.status, 200));
  eddy_http_stats_t st;
  eddy_http_server_stats(&fx.srv, &st);
  cr_assert(eq(u64, st.connections, 1));
}

/* ---- Expect: 100-continue
 * ------------------------------------------------------- */

static void expect_refused(http_fixture_t *f) {
  static const char head[] =
      "POST /ignore HTTP/1.1\r\nHost: a\r\n"
      "Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n";
  tc_talk(f->port, head, sizeof head - 1, &got);
}

EDDY_IO_TEST(http_body, expect_without_reading_answers_and_closes) {
  char v[32];
  http_start(&fx, *backend, NULL, late_app);
  http_run(&fx, expect_refused);
  cr_assert_null(memmem(got.buf, got.len, "100 Continue", 12));
  tc_expect_status_then_eof(&got, 401);
  tc_parse(got.buf, got.len, &resp, 0);
  cr_assert(
      eq(str, (char *)tc_header(&resp, "Connection", v, sizeof v), "close"));
}

static char continue_seen[64];

static void expect_accepted(http_fixture_t *f) {
  static const char head[] =
      "POST /late HTTP/1.1\r\nHost: a\r\n"
      "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n";
  int fd = tc_connect(f->port);
  tc_send(fd, head, sizeof head - 1);
  ssize_t n = recv(fd, continue_seen, sizeof continue_seen - 1, 0);
  if (n > 0)
    continue_seen[n] = '\0';
  tc_sends(fd, "hello");
  tc_read_n(fd, &got, 1, 0);
  close(fd);
}

EDDY_IO_TEST(http_body, expect_gets_100_continue_when_the_body_is_read) {
  http_start(&fx, *backend, NULL, late_app);
  http_run(&fx, expect_accepted);
  cr_assert(eq(str, continue_seen, "HTTP/1.1 100 Continue\r\n\r\n"));
  tc_parse(got.buf, got.len, &resp, 0);
  cr_assert(eq(int, resp.status, 200));
  cr_assert(eq(int, memcmp(resp.body, "5 ", 2), 0));
}

/* ---- Response backpressure ----------------------------------------------- */

#define PIECE 65536
#define TOTAL_OUT (4u << 20)

static size_t written_out, fulls, drains;
static char piece[PIECE];

static void pump(eddy_http_res_t *res) {
  while (written_out < TOTAL_OUT) {
    for (size_t i = 0; i < PIECE; i++)
      piece[i] = body_byte(written_out + i);
    written_out += PIECE;
    int r = eddy_http_write(res, piece, PIECE);
    cr_assert(ge(int, r, 0), "write: %s", eddy_err_name(r));
    if (r == EDDY_STREAM_FULL) {
      fulls++;
      return; /* wait for drain */
    }
  }
  eddy_http_end(res, NULL, 0);
}

static void on_drain(eddy_http_res_t *res) {
  drains++;
  pump(res);
}

static void big_answer_app(eddy_http_req_t *req, eddy_http_res_t *res) {
  char len[32];
  snprintf(len, sizeof len, "%u", TOTAL_OUT);
  eddy_http_set_header(res, "Content-Length", len);
  eddy_http_res_set_drain_cb(res, on_drain);
  pump(res);
}

static size_t read_out;
static uint64_t read_hash;

static void slow_reader(http_fixture_t *f) {
  static char buf[PIECE];
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  size_t head = 0;
  read_hash = FNV_INIT;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    size_t skip = 0;
    if (head == 0) { /* drop the head */
      char *e = memmem(buf, (size_t)n, "\r\n\r\n", 4);
      skip = e != NULL ? (size_t)(e + 4 - buf) : 0;
      head = 1;
    }
    read_hash = fnv1a(read_hash, buf + skip, (size_t)n - skip);
    read_out += (size_t)n - skip;
    usleep(500);
  }
  close(fd);
}

EDDY_IO_TEST(http_body, big_response_waits_for_drain_and_arrives_intact) {
  http_start(&fx, *backend, NULL, big_answer_app);
  http_run(&fx, slow_reader);
  uint64_t h = FNV_INIT;
  for (size_t off = 0; off < TOTAL_OUT; off += PIECE) {
    for (size_t i = 0; i < PIECE; i++)
      piece[i] = body_byte(off + i);
    h = fnv1a(h, piece, PIECE);
  }
  cr_assert(eq(sz, read_out, (size_t)TOTAL_OUT));
  cr_assert(eq(u64, read_hash, h), "bytes differ end to end");
  cr_assert(gt(sz, fulls, (size_t)0), "eddy_http_write never said full");
  cr_assert(eq(sz, drains, fulls));
}

/* ---- Abort --------------------------------------------------------------- */

static int abort_status, end_status = 1;
static eddy_http_res_t *held_res;

static void on_abort(eddy_http_res_t *res, int status) {
  abort_status = status;
}

static void end_late(eddy_timer_t *t) {
  end_status = eddy_http_end(held_res, "late", 4);
  eddy_close(&t->handle, NULL);
}

static void abort_app(eddy_http_req_t *req, eddy_http_res_t *res) {
  held_res = res;
  eddy_http_res_set_abort_cb(res, on_abort);
  eddy_timer_init(fx.srv.loop, &later);
  eddy_timer_start(&later, end_late, 200, 0);
}

static void reset_after_asking(http_fixture_t *f) {
  struct linger l = {1, 0};
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  usleep(50000);
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);      /* RST */
  usleep(300000); /* the handler ends meanwhile */
}

EDDY_IO_TEST(http_body, reset_connection_aborts_the_response) {
  http_start(&fx, *backend, NULL, abort_app);
  http_run(&fx, reset_after_asking);
  cr_assert(eq(int, abort_status, EDDY_ECONNRESET), "abort heard %s",
            eddy_err_name(abort_status));
  cr_assert(eq(int, end_status, EDDY_ECONNRESET));
  eddy_http_stats_t st;
  eddy_http_server_stats(&fx.srv, &st);
  cr_assert(eq(sz, st.active_requests, (size_t)0));
}

/* A reader that paused its body (as /echo does while its answer drains)
 * still hears that the connection broke, once a write notices it.  (While
 * nothing reads or writes, a reset goes unnoticed, as with libuv.) */
static int paused_heard;
static eddy_timer_t ticker;
static eddy_http_res_t *ticking;

static void tick_write(eddy_timer_t *t) {
  if (ticking != NULL)
    eddy_http_write(ticking, "x", 1);
}

static void pause_forever(eddy_http_req_t *req, ssize_t n,
                          const eddy_slice_t *b) {
  if (n > 0) {
    eddy_http_req_read_stop(req);
    return;
  }
  paused_heard = (int)n;
  ticking = NULL;
  eddy_close(&ticker.handle, NULL);
  eddy_http_end(req->data, NULL, 0);
}

static void pausing_forever_app(eddy_http_req_t *req, eddy_http_res_t *res) {
  req->data = res;
  ticking = res;
  eddy_timer_init(fx.srv.loop, &ticker);
  eddy_timer_start(&ticker, tick_write, 20, 20);
  eddy_http_req_read_start(req, pause_forever);
}

static void send_half_then_reset(http_fixture_t *f) {
  static char part[100000];
  struct linger l = {1, 0};
  int fd = tc_connect(f->port);
  tc_sends(fd, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n");
  tc_send(fd, part, sizeof part);
  usleep(100000);
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
  usleep(200000);
}

EDDY_IO_TEST(http_body, paused_reader_hears_the_connection_break) {
  http_start(&fx, *backend, NULL, pausing_forever_app);
  http_run(&fx, send_half_then_reset);
  cr_assert(eq(int, paused_heard, EDDY_ECONNRESET), "the reader heard %s",
            eddy_err_name(paused_heard));
}
