/* HTTP server basics over raw sockets: keep-alive, pipelining in order,
 * HEAD, Date, HTTP/1.0 and Connection: close, chunked responses, idle
 * timeout, graceful close, Unix sockets. */
#include "http_helpers.h"

TestSuite(http, .timeout = 30);

static http_fixture_t fx;
static tc_log_t got1, got2;
static tc_resp_t resp;

/* ---- The application ----------------------------------------------------- */

typedef struct {
  eddy_timer_t timer;
  eddy_http_res_t *res;
  char body[64];
  size_t len;
} delayed_t;

static void delayed_closed(eddy_handle_t *h) {
  free(h);
}

static void delayed_fire(eddy_timer_t *t) {
  delayed_t *d = (delayed_t *)t;
  eddy_http_end(d->res, d->body, d->len);
  eddy_close(&t->handle, delayed_closed);
}

/* Answers body after ms milliseconds. */
static void answer_later(eddy_http_res_t *res, const char *body, size_t len,
                         uint64_t ms) {
  delayed_t *d = malloc(sizeof *d);
  d->res = res;
  d->len = len < sizeof d->body ? len : sizeof d->body;
  memcpy(d->body, body, d->len);
  eddy_timer_init(fx.srv.loop, &d->timer);
  eddy_timer_start(&d->timer, delayed_fire, ms, 0);
}

/* /hello: hello world.  /echo/...: the path, after ?delay=ms if given.
 * /stream: "hello " and "world" in two writes.  /slow: hello after 300 ms,
 * closing the server first if ?close. */
static void app(eddy_http_req_t *req, eddy_http_res_t *res) {
  eddy_http_set_header(res, "Content-Type", "text/plain");
  if (req->path.len >= 6 && memcmp(req->path.base, "/echo/", 6) == 0) {
    int delay = req->query.len > 6 ? atoi(req->query.base + 6) : -1;
    if (delay >= 0)
      answer_later(res, req->path.base, req->path.len, (uint64_t)delay);
    else
      eddy_http_end(res, req->path.base, req->path.len);
  } else if (path_is(req, "/stream")) {
    eddy_http_write(res, "hello ", 6);
    eddy_http_write(res, "world", 5);
    eddy_http_end(res, NULL, 0);
  } else if (path_is(req, "/slow")) {
    if (req->query.len > 0)
      http_close(&fx);
    answer_later(res, "hello world", 11, 300);
  } else {
    eddy_http_end(res, "hello world", 11);
  }
}

/* ---- Keep-alive ------------------------------------------------------------
 */

static void two_gets(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got1, 1, 0);
  tc_sends(fd, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got1, 1, 0);
  close(fd);
}

EDDY_IO_TEST(http, get_answers_hello_and_keeps_the_connection) {
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, two_gets);
  size_t n = tc_parse(got1.buf, got1.len, &resp, 0);
  cr_assert(gt(sz, n, (size_t)0));
  cr_assert(eq(int, resp.status, 200));
  cr_assert(eq(sz, resp.body_len, (size_t)11));
  cr_assert(eq(int, memcmp(resp.body, "hello world", 11), 0));
  char v[64];
  cr_assert(eq(str, (char *)tc_header(&resp, "Content-Type", v, sizeof v),
               "text/plain"));
  cr_assert(
      eq(str, (char *)tc_header(&resp, "Content-Length", v, sizeof v), "11"));
  cr_assert_null(tc_header(&resp, "Connection", v, sizeof v));
  cr_assert(gt(sz, tc_parse(got1.buf + n, got1.len - n, &resp, 0), (size_t)0));
  cr_assert(eq(int, resp.status, 200));
  cr_assert(eq(int, memcmp(resp.body, "/echo/x", 7), 0));
  eddy_http_stats_t st;
  eddy_http_server_stats(&fx.srv, &st);
  cr_assert(eq(u64, st.connections, 1), "one connection for both");
  cr_assert(eq(u64, st.requests, 2));
}

/* ---- Pipelining ---------------------------------------------------------- */

static void pipeline16(http_fixture_t *f) {
  char req[4096];
  size_t n = 0;
  for (int i = 0; i < 16; i++) {
    /* Every third answers late, so answers end out of order. */
    n += (size_t)snprintf(req + n, sizeof req - n,
                          "GET /echo/%d?delay=%d HTTP/1.1\r\nHost: a\r\n\r\n",
                          i, i % 3 == 0 ? 50 - i : -1);
  }
  int fd = tc_connect(f->port);
  tc_send(fd, req, n); /* all 16 in one write */
  tc_read_n(fd, &got1, 16, 0);
  close(fd);
}

EDDY_IO_TEST(http, pipelined_16_requests_answered_in_order) {
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, pipeline16);
  size_t off = 0;
  for (int i = 0; i < 16; i++) {
    char want[32];
    size_t n = tc_parse(got1.buf + off, got1.len - off, &resp, 0);
    cr_assert(gt(sz, n, (size_t)0), "response %d missing", i);
    snprintf(want, sizeof want, "/echo/%d", i);
    cr_assert(eq(int, resp.status, 200));
    cr_assert(eq(sz, resp.body_len, strlen(want)), "response %d", i);
    cr_assert(eq(int, memcmp(resp.body, want, resp.body_len), 0),
              "response %d is %.*s", i, (int)resp.body_len, resp.body);
    off += n;
  }
  cr_assert(eq(sz, off, got1.len), "bytes after the 16 responses");
}

/* ---- HEAD, Date ---------------------------------------------------------- */

static void head_then_get(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  tc_sends(fd, "HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got1, 1, 1);
  tc_sends(fd, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got2, 1, 0);
  close(fd);
}

EDDY_IO_TEST(http, head_has_get_headers_and_no_body) {
  char v[64];
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, head_then_get);
  size_t n = tc_parse(got1.buf, got1.len, &resp, 1);
  cr_assert(eq(sz, n, got1.len), "HEAD answered with body bytes");
  cr_assert(eq(int, resp.status, 200));
  cr_assert(
      eq(str, (char *)tc_header(&resp, "Content-Length", v, sizeof v), "11"));
  cr_assert(eq(sz, tc_parse(got2.buf, got2.len, &resp, 0), got2.len));
  cr_assert(eq(int, memcmp(resp.body, "hello world", 11), 0));
}

static void one_get(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got1, 1, 0);
  close(fd);
}

EDDY_IO_TEST(http, date_header_is_imf_fixdate_and_current) {
  char v[64];
  struct tm tm = {0};
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, one_get);
  cr_assert(gt(sz, tc_parse(got1.buf, got1.len, &resp, 0), (size_t)0));
  cr_assert_not_null(tc_header(&resp, "Date", v, sizeof v));
  /* "Sun, 06 Nov 1994 08:49:37 GMT": fixed width, GMT, C-locale names. */
  cr_assert(eq(sz, strlen(v), (size_t)29), "Date: %s", v);
  char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  cr_assert_not_null(end, "Date: %s", v);
  cr_assert(eq(chr, *end, '\0'), "Date: %s", v);
  long skew = (long)(timegm(&tm) - time(NULL));
  cr_assert(le(long, labs(skew), 2L), "Date is %ld s off", skew);
}

/* ---- Connection handling ------------------------------------------------- */

static void http10_twice(http_fixture_t *f) {
  tc_talk(f->port, "GET /hello HTTP/1.0\r\n\r\n", 23, &got1);
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  tc_read_n(fd, &got2, 1, 0);
  tc_sends(fd, "GET /echo/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  tc_read_n(fd, &got2, 1, 0);
  close(fd);
}

EDDY_IO_TEST(http, http10_closes_unless_keep_alive_asked) {
  char v[64];
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, http10_twice);
  tc_expect_status_then_eof(&got1, 200);
  tc_parse(got1.buf, got1.len, &resp, 0);
  cr_assert(
      eq(str, (char *)tc_header(&resp, "Connection", v, sizeof v), "close"));
  size_t n = tc_parse(got2.buf, got2.len, &resp, 0);
  cr_assert(eq(str, (char *)tc_header(&resp, "Connection", v, sizeof v),
               "keep-alive"));
  cr_assert(gt(sz, tc_parse(got2.buf + n, got2.len - n, &resp, 0), (size_t)0),
            "no second answer on the kept connection");
  cr_assert(eq(int, memcmp(resp.body, "/echo/2", 7), 0));
}

static void close_asked(http_fixture_t *f) {
  const char req[] =
      "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n";
  tc_talk(f->port, req, sizeof req - 1, &got1);
}

EDDY_IO_TEST(http, connection_close_answers_once_then_closes) {
  char v[64];
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, close_asked);
  tc_expect_status_then_eof(&got1, 200); /* the second is not answered */
  tc_parse(got1.buf, got1.len, &resp, 0);
  cr_assert(
      eq(str, (char *)tc_header(&resp, "Connection", v, sizeof v), "close"));
}

static void stream_twice(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got1, 1, 0);
  close(fd);
  tc_talk(f->port, "GET /stream HTTP/1.0\r\n\r\n", 24, &got2);
}

EDDY_IO_TEST(http, response_without_length_is_chunked_in_11_closed_in_10) {
  char v[64];
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, stream_twice);
  cr_assert(eq(sz, tc_parse(got1.buf, got1.len, &resp, 0), got1.len));
  cr_assert(eq(str, (char *)tc_header(&resp, "Transfer-Encoding", v, sizeof v),
               "chunked"));
  cr_assert(eq(sz, resp.body_len, (size_t)11));
  cr_assert(eq(int, memcmp(resp.body, "hello world", 11), 0));
  cr_assert(eq(int, got2.end, 1));
  tc_parse(got2.buf, got2.len, &resp, 0);
  cr_assert_null(tc_header(&resp, "Transfer-Encoding", v, sizeof v));
  cr_assert(
      eq(str, (char *)tc_header(&resp, "Connection", v, sizeof v), "close"));
  cr_assert(eq(sz, resp.body_len, (size_t)11), "the close ends the body");
  cr_assert(eq(int, memcmp(resp.body, "hello world", 11), 0));
}

/* ---- Timeouts and closing ------------------------------------------------ */

static void idle_then_wait(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got1, 1, 0);
  uint64_t t0 = tc_ms();
  char tmp[64];
  tc_read_all(fd, tmp, sizeof tmp, &got1.end);
  got1.ms = tc_ms() - t0;
  close(fd);
}

EDDY_IO_TEST(http, idle_keep_alive_connection_closes_after_timeout) {
  eddy_http_server_options_t o;
  eddy_http_server_options_init(&o);
  o.keepalive_timeout_ms = 200;
  http_start(&fx, *backend, &o, app);
  http_run(&fx, idle_then_wait);
  cr_assert(eq(int, got1.end, 1), "closed with %d, not EOF", got1.end);
  cr_assert(ge(u64, got1.ms, 150), "closed after %llu ms",
            (unsigned long long)got1.ms);
  cr_assert(le(u64, got1.ms, 1500), "closed after %llu ms",
            (unsigned long long)got1.ms);
}

static int idle_fd_end;
static uint64_t idle_fd_ms;

static void close_with_one_in_flight(http_fixture_t *f) {
  int idle = tc_connect(f->port);
  usleep(50000); /* the server accepts it before the busy one */
  uint64_t t0 = tc_ms();
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET /slow?close HTTP/1.1\r\nHost: a\r\n\r\n");
  char tmp[16];
  tc_read_all(idle, tmp, sizeof tmp, &idle_fd_end);
  idle_fd_ms = tc_ms() - t0;
  close(idle);
  got1.len = tc_read_all(fd, got1.buf, sizeof got1.buf, &got1.end);
  close(fd);
  got2.end = tc_connect(f->port); /* refused: the server stopped listening */
  if (got2.end >= 0)
    close(got2.end);
}

EDDY_IO_TEST(http, graceful_close_finishes_in_flight_and_closes_idle) {
  char v[64];
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, close_with_one_in_flight);
  cr_assert(eq(int, idle_fd_end, 1), "idle connection not closed: %d",
            idle_fd_end);
  cr_assert(lt(u64, idle_fd_ms, 250), "idle closed only after %llu ms",
            (unsigned long long)idle_fd_ms);
  tc_expect_status_then_eof(&got1, 200);
  tc_parse(got1.buf, got1.len, &resp, 0);
  cr_assert(eq(int, memcmp(resp.body, "hello world", 11), 0));
  cr_assert(
      eq(str, (char *)tc_header(&resp, "Connection", v, sizeof v), "close"));
  cr_assert(eq(int, got2.end, -ECONNREFUSED));
}

/* ---- Unix sockets -------------------------------------------------------- */

static char unix_path[64];

static void unix_get(http_fixture_t *f) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  struct timeval tv = {5, 0};
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  snprintf(a.sun_path, sizeof a.sun_path, "%s", unix_path);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    got1.end = -errno;
    close(fd);
    return;
  }
  tc_sends(fd, "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  got1.len = tc_read_all(fd, got1.buf, sizeof got1.buf, &got1.end);
  close(fd);
}

EDDY_IO_TEST(http, unix_socket_listener_serves) {
  struct sockaddr_storage ss;
  http_start(&fx, *backend, NULL, app);
  snprintf(unix_path, sizeof unix_path, "/tmp/eddy-http-%d.sock", getpid());
  unlink(unix_path);
  cr_assert(eq(int, eddy_http_server_listen_unix(&fx.srv, unix_path), 0));
  cr_assert(eq(int, eddy_http_server_address(&fx.srv, 1, &ss), 0));
  cr_assert(eq(int, ss.ss_family, AF_UNIX));
  cr_assert(eq(int, eddy_http_server_address(&fx.srv, 2, &ss), EDDY_ENOENT));
  http_run(&fx, unix_get);
  unlink(unix_path);
  tc_expect_status_then_eof(&got1, 200);
}

/* ---- Upgrade ------------------------------------------------------------- */

static void upgrade_then_get(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  tc_sends(fd,
           "GET /echo/u HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
           "Upgrade: websocket\r\n\r\nGET /echo/v HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got1, 2, 0);
  close(fd);
}

EDDY_IO_TEST(http, upgrade_is_answered_plainly_and_requests_go_on) {
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, upgrade_then_get);
  size_t n = tc_parse(got1.buf, got1.len, &resp, 0);
  cr_assert(eq(int, resp.status, 200));
  cr_assert(eq(int, memcmp(resp.body, "/echo/u", 7), 0));
  cr_assert(gt(sz, tc_parse(got1.buf + n, got1.len - n, &resp, 0), (size_t)0),
            "the request after the upgrade was not answered");
  cr_assert(eq(int, memcmp(resp.body, "/echo/v", 7), 0));
}

/* ---- The response API -----------------------------------------------------
 */

static int api_results[8];

/* /bad: header errors.  /short: Content-Length 10, 5 bytes written.
 * /empty: 204.  /stream as HEAD: a chunked head, no body. */
static void api_app(eddy_http_req_t *req, eddy_http_res_t *res) {
  if (path_is(req, "/bad")) {
    api_results[0] = eddy_http_set_header(res, "X-A", "a\r\nX-Evil: 1");
    api_results[1] = eddy_http_set_header(res, "X B", "b");
    api_results[2] = eddy_http_set_header(res, "Transfer-Encoding", "gzip");
    api_results[3] = eddy_http_set_status(res, 99);
    api_results[4] = eddy_http_set_header(res, "Content-Length", "3");
    api_results[5] = eddy_http_write(res, "abcd", 4); /* past the length */
    eddy_http_write(res, "abc", 3);
    api_results[6] = eddy_http_set_header(res, "X-Late", "1");
    eddy_http_end(res, NULL, 0);
  } else if (path_is(req, "/short")) {
    eddy_http_set_header(res, "Content-Length", "10");
    eddy_http_end(res, "12345", 5);
  } else if (path_is(req, "/empty")) {
    eddy_http_set_status(res, 204);
    eddy_http_end(res, "ignored", 7);
  } else {
    app(req, res);
  }
}

static void api_client(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  tc_sends(fd, "GET /bad HTTP/1.1\r\nHost: a\r\n\r\n"
               "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n"
               "HEAD /stream HTTP/1.1\r\nHost: a\r\n\r\n");
  tc_read_n(fd, &got1, 2, 0);
  tc_read_n(fd, &got1, 1, 1);
  close(fd);
  static const char req[] = "GET /short HTTP/1.1\r\nHost: a\r\n\r\n";
  tc_talk(f->port, req, sizeof req - 1, &got2);
}

EDDY_IO_TEST(http, response_api_refuses_bad_headers_and_keeps_lengths) {
  char v[64];
  http_start(&fx, *backend, NULL, api_app);
  http_run(&fx, api_client);
  cr_assert(eq(int, api_results[0], EDDY_EINVAL), "CRLF in a value");
  cr_assert(eq(int, api_results[1], EDDY_EINVAL), "space in a name");
  cr_assert(eq(int, api_results[2], EDDY_EINVAL), "Transfer-Encoding");
  cr_assert(eq(int, api_results[3], EDDY_EINVAL), "status 99");
  cr_assert(eq(int, api_results[4], 0));
  cr_assert(eq(int, api_results[5], EDDY_EINVAL), "write past the length");
  cr_assert(eq(int, api_results[6], EDDY_EBUSY), "header after the head");
  size_t n = tc_parse(got1.buf, got1.len, &resp, 0);
  cr_assert(eq(int, resp.status, 200));
  cr_assert(eq(sz, resp.body_len, (size_t)3));
  cr_assert_null(memmem(resp.head, resp.head_len, "Evil", 4));
  size_t m = tc_parse(got1.buf + n, got1.len - n, &resp, 0);
  cr_assert(eq(int, resp.status, 204));
  cr_assert_null(tc_header(&resp, "Content-Length", v, sizeof v));
  n += m;
  cr_assert(
      eq(sz, tc_parse(got1.buf + n, got1.len - n, &resp, 1), got1.len - n),
      "HEAD answered with body bytes");
  cr_assert(eq(str, (char *)tc_header(&resp, "Transfer-Encoding", v, sizeof v),
               "chunked"));
  /* A body short of its length: the connection ends after it. */
  cr_assert(eq(int, got2.end, 1));
  cr_assert_not_null(memmem(got2.buf, got2.len, "\r\n\r\n12345", 9));
}
