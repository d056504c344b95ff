/* What the server refuses, over raw sockets: each case is answered with
 * its status and then the connection ends with EOF (not a reset).  The
 * request-smuggling cases are the ones llhttp 8.1 lets through or that
 * must never be guessed at. */
#include "http_helpers.h"

TestSuite(http_limits, .timeout = 30);

static http_fixture_t fx;
static tc_log_t got;
static char req[64 * 1024];
static size_t req_len;
static int body_error;
static size_t body_len; /* of the request being read: one at a time here */

/* Reads the body; answers with its length. */
static void on_body(eddy_http_req_t *r, ssize_t n, const eddy_slice_t *b) {
  if (n > 0) {
    body_len += (size_t)n;
    return;
  }
  if (n != EDDY_EOF)
    body_error = (int)n;
  char out[32];
  int len = snprintf(out, sizeof out, "%zu", body_len);
  eddy_http_end(r->data, out, (size_t)len);
}

static void app(eddy_http_req_t *r, eddy_http_res_t *res) {
  r->data = res;
  body_len = 0;
  eddy_http_req_read_start(r, on_body);
}

static void send_req(http_fixture_t *f) {
  tc_talk(f->port, req, req_len, &got);
}

static void set_req(const char *s) {
  req_len = strlen(s);
  memcpy(req, s, req_len);
}

/* Runs the request given with set_req against a server with opts. */
static void run_case(const char *backend, const eddy_http_server_options_t *o) {
  http_start(&fx, backend, o, app);
  http_run(&fx, send_req);
}

static void reject_case(const char *backend, const char *request, int status) {
  set_req(request);
  run_case(backend, NULL);
  tc_expect_status_then_eof(&got, status);
  eddy_http_stats_t st;
  eddy_http_server_stats(&fx.srv, &st);
  cr_assert(eq(u64, st.rejected, 1));
}

/* ---- Sizes --------------------------------------------------------------- */

static void big(const char *before, size_t n, char fill, const char *after) {
  size_t b = strlen(before);
  memcpy(req, before, b);
  memset(req + b, fill, n);
  memcpy(req + b + n, after, strlen(after));
  req_len = b + n + strlen(after);
}

EDDY_IO_TEST(http_limits, headers_over_16k_are_431) {
  big("GET / HTTP/1.1\r\nHost: a\r\nX-Big: ", 17000, 'a', "\r\n\r\n");
  run_case(*backend, NULL);
  tc_expect_status_then_eof(&got, 431);
}

EDDY_IO_TEST(http_limits, many_small_headers_over_16k_are_431) {
  size_t n = (size_t)sprintf(req, "GET / HTTP/1.1\r\nHost: a\r\n");
  for (int i = 0; n < 17000; i++)
    n += (size_t)sprintf(req + n, "X-%d: %d\r\n", i, i);
  n += (size_t)sprintf(req + n, "\r\n");
  req_len = n;
  run_case(*backend, NULL);
  tc_expect_status_then_eof(&got, 431);
}

EDDY_IO_TEST(http_limits, target_over_the_limit_is_414) {
  big("GET /", 17000, 'a', " HTTP/1.1\r\nHost: a\r\n\r\n");
  run_case(*backend, NULL);
  tc_expect_status_then_eof(&got, 414);
}

EDDY_IO_TEST(http_limits, body_over_max_is_413_before_the_handler) {
  eddy_http_server_options_t o;
  eddy_http_server_options_init(&o);
  o.max_body_size = 1000;
  big("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", 5000, 'x',
      "");
  run_case(*backend, &o);
  tc_expect_status_then_eof(&got, 413);
  eddy_http_stats_t st;
  eddy_http_server_stats(&fx.srv, &st);
  cr_assert(eq(u64, st.requests, 0), "the handler saw it");
}

EDDY_IO_TEST(http_limits, chunked_body_over_max_is_413_mid_body) {
  eddy_http_server_options_t o;
  eddy_http_server_options_init(&o);
  o.max_body_size = 1000;
  size_t n = (size_t)sprintf(req, "POST / HTTP/1.1\r\nHost: a\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 10; i++)
    n += (size_t)sprintf(req + n, "c8\r\n%0200d\r\n", i);
  n += (size_t)sprintf(req + n, "0\r\n\r\n");
  req_len = n;
  run_case(*backend, &o);
  tc_expect_status_then_eof(&got, 413);
  cr_assert(eq(int, body_error, EDDY_EMSGSIZE), "the reader heard %s",
            eddy_err_name(body_error));
}

/* ---- Time ---------------------------------------------------------------- */

/* One byte every 40 ms, never finishing the head, until the server
 * answers. */
static void trickle(http_fixture_t *f) {
  static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: "
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  uint64_t t0 = tc_ms();
  int fd = tc_connect(f->port);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  for (size_t i = 0; i < sizeof head - 1 && poll(&p, 1, 40) == 0; i++)
    tc_send(fd, head + i, 1);
  got.len = tc_read_all(fd, got.buf, sizeof got.buf, &got.end);
  got.ms = tc_ms() - t0;
  close(fd);
}

EDDY_IO_TEST(http_limits, trickled_headers_get_408_at_the_deadline) {
  eddy_http_server_options_t o;
  eddy_http_server_options_init(&o);
  o.headers_timeout_ms = 300;
  http_start(&fx, *backend, &o, app);
  http_run(&fx, trickle);
  tc_expect_status_then_eof(&got, 408);
  cr_assert(ge(u64, got.ms, 280), "answered after %llu ms",
            (unsigned long long)got.ms);
  cr_assert(lt(u64, got.ms, 1500), "bytes kept extending the deadline: %llu ms",
            (unsigned long long)got.ms);
}

/* ---- Malformed and smuggling --------------------------------------------- */

EDDY_IO_TEST(http_limits, garbage_is_400) {
  reject_case(*backend, "HELLO THERE\r\n\r\n", 400);
}

EDDY_IO_TEST(http_limits, missing_host_in_11_is_400) {
  reject_case(*backend, "GET / HTTP/1.1\r\n\r\n", 400);
}

EDDY_IO_TEST(http_limits, http2_version_is_505) {
  reject_case(*backend, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
}

EDDY_IO_TEST(http_limits, content_length_with_transfer_encoding_is_400) {
  reject_case(*backend,
              "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
              400);
}

EDDY_IO_TEST(http_limits, differing_content_lengths_are_400) {
  reject_case(*backend,
              "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
              "Content-Length: 6\r\n\r\nhello!",
              400);
}

EDDY_IO_TEST(http_limits, transfer_encoding_not_ending_in_chunked_is_400) {
  reject_case(*backend,
              "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip"
              "\r\n\r\n0\r\n\r\n",
              400);
}

EDDY_IO_TEST(http_limits, transfer_encoding_gzip_alone_is_400) {
  reject_case(*backend,
              "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nab",
              400);
}

EDDY_IO_TEST(http_limits, bare_cr_in_a_header_is_400) {
  reject_case(*backend, "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400);
}

EDDY_IO_TEST(http_limits, bare_cr_in_the_request_line_is_400) {
  reject_case(*backend, "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

EDDY_IO_TEST(http_limits, obs_fold_is_400) {
  reject_case(*backend, "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400);
}

EDDY_IO_TEST(http_limits, header_line_starting_with_tab_is_400) {
  reject_case(*backend, "GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", 400);
}

EDDY_IO_TEST(http_limits, empty_header_name_is_400) {
  reject_case(*backend, "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400);
}

EDDY_IO_TEST(http_limits, invalid_chunk_size_is_400) {
  reject_case(*backend,
              "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              "zz\r\nabc\r\n0\r\n\r\n",
              400);
}

EDDY_IO_TEST(http_limits, overflowing_chunk_size_is_400) {
  reject_case(*backend,
              "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              "fffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
              400);
}

EDDY_IO_TEST(http_limits, unbounded_chunk_extension_is_400) {
  big("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=",
      20000, 'x', "\r\nabc\r\n0\r\n\r\n");
  run_case(*backend, NULL);
  tc_expect_status_then_eof(&got, 400);
  cr_assert(eq(int, body_error, EDDY_EPROTO), "the reader heard %s",
            eddy_err_name(body_error));
}

/* ---- What must still pass ------------------------------------------------ */

/* A head that arrives a few bytes at a time is put back together. */
static void in_pieces(http_fixture_t *f) {
  static const char r[] = "POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 5"
                          "\r\nX-A: 1\r\n\r\nhelloGET / HTTP/1.1\r\nHost: b\r\n"
                          "Connection: close\r\n\r\n";
  int fd = tc_connect(f->port);
  for (size_t i = 0; i < sizeof r - 1; i += 7) {
    tc_send(fd, r + i, sizeof r - 1 - i < 7 ? sizeof r - 1 - i : 7);
    usleep(2000);
  }
  got.len = tc_read_all(fd, got.buf, sizeof got.buf, &got.end);
  close(fd);
}

EDDY_IO_TEST(http_limits, head_split_across_many_reads_is_parsed) {
  static tc_resp_t r;
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, in_pieces);
  size_t n = tc_parse(got.buf, got.len, &r, 0);
  cr_assert(eq(int, r.status, 200));
  cr_assert(eq(sz, r.body_len, (size_t)1));
  cr_assert(eq(chr, r.body[0], '5'));
  cr_assert(gt(sz, tc_parse(got.buf + n, got.len - n, &r, 0), (size_t)0));
  cr_assert(eq(int, r.status, 200));
  cr_assert(eq(int, got.end, 1));
}

EDDY_IO_TEST(http_limits, equal_duplicate_content_length_is_not_guessed_at) {
  /* RFC 9112 allows taking one of identical values; llhttp refuses any
   * duplicate, which is safe. */
  reject_case(*backend,
              "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
              "Content-Length: 5\r\n\r\nhello",
              400);
}
