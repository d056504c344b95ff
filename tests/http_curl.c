/* The server against a real client: curl (installed by scripts/deps.sh),
 * run as a child process from the client thread.  Keep-alive reuse across
 * two URLs, a chunked upload, Expect: 100-continue, HEAD. */
#include "http_helpers.h"

TestSuite(http_curl, .timeout = 30);

static http_fixture_t fx;
static char out[1 << 16];
static size_t out_len;
static int curl_status;
static uint64_t curl_ms;
static char upload_path[64];
static uint64_t upload_hash;
static size_t upload_size;

/* ---- The application ----------------------------------------------------- */

static size_t body_len;
static uint64_t body_hash;
static int saw_expect;

static void on_body(eddy_http_req_t *req, ssize_t n, const eddy_slice_t *b) {
  if (n > 0) {
    body_hash = fnv1a(body_hash, b->base, (size_t)n);
    body_len += (size_t)n;
    return;
  }
  char res[64];
  int len = snprintf(res, sizeof res, "%zu %016llx%s", body_len,
                     (unsigned long long)body_hash, n == EDDY_EOF ? "" : " !");
  eddy_http_end(req->data, res, (size_t)len);
}

/* POST: answers "<length> <hash>" of the body.  Else hello world. */
static void app(eddy_http_req_t *req, eddy_http_res_t *res) {
  eddy_http_set_header(res, "Content-Type", "text/plain");
  if (req->method != EDDY_HTTP_POST) {
    eddy_http_end(res, "hello world", 11);
    return;
  }
  saw_expect |= eddy_http_req_header(req, "expect") != NULL;
  req->data = res;
  body_len = 0;
  body_hash = FNV_INIT;
  eddy_http_req_read_start(req, on_body);
}

/* ---- Running curl -------------------------------------------------------- */

static char url[2][64];

static void curl(char *const argv[]) {
  uint64_t t0 = tc_ms();
  curl_status = tc_run(argv, out, sizeof out, &out_len);
  curl_ms = tc_ms() - t0;
}

static void set_urls(int port) {
  snprintf(url[0], sizeof url[0], "http://127.0.0.1:%d/a", port);
  snprintf(url[1], sizeof url[1], "http://127.0.0.1:%d/b", port);
}

static void make_upload(size_t size) {
  snprintf(upload_path, sizeof upload_path, "/tmp/eddy-upload-%d", getpid());
  FILE *f = fopen(upload_path, "wb");
  cr_assert_not_null(f);
  upload_hash = FNV_INIT;
  for (size_t i = 0; i < size; i++) {
    char c = body_byte(i);
    upload_hash = fnv1a(upload_hash, &c, 1);
    fputc(c, f);
  }
  fclose(f);
  upload_size = size;
}

static void expect_upload_answer(void) {
  char want[80];
  snprintf(want, sizeof want, "%zu %016llx", upload_size,
           (unsigned long long)upload_hash);
  cr_assert_not_null(strstr(out, want), "curl said: %s", out);
  unlink(upload_path);
}

/* ---- Tests --------------------------------------------------------------- */

static void two_urls(http_fixture_t *f) {
  set_urls(f->port);
  char *argv[] = {"curl", "-sS", "-v", "--max-time", "5", url[0], url[1], NULL};
  curl(argv);
}

EDDY_IO_TEST(http_curl, reuses_the_connection_across_two_urls) {
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, two_urls);
  cr_assert(eq(int, curl_status, 0), "curl failed: %s", out);
  cr_assert_not_null(strstr(out, "Re-using existing connection"), "%s", out);
  const char *first = strstr(out, "hello world");
  cr_assert_not_null(first, "%s", out);
  cr_assert_not_null(strstr(first + 11, "hello world"), "%s", out);
  eddy_http_stats_t st;
  eddy_http_server_stats(&fx.srv, &st);
  cr_assert(eq(u64, st.connections, 1));
  cr_assert(eq(u64, st.requests, 2));
}

static void chunked_upload(http_fixture_t *f) {
  char data[80];
  set_urls(f->port);
  snprintf(data, sizeof data, "@%s", upload_path);
  char *argv[] = {"curl",
                  "-sS",
                  "--max-time",
                  "5",
                  "-H",
                  "Transfer-Encoding: chunked",
                  "--data-binary",
                  data,
                  url[0],
                  NULL};
  curl(argv);
}

EDDY_IO_TEST(http_curl, chunked_upload_arrives_intact) {
  make_upload(300000);
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, chunked_upload);
  cr_assert(eq(int, curl_status, 0), "curl failed: %s", out);
  expect_upload_answer();
}

static void expect_upload(http_fixture_t *f) {
  char data[80];
  set_urls(f->port);
  snprintf(data, sizeof data, "@%s", upload_path);
  char *argv[] = {"curl",
                  "-sS",
                  "-v",
                  "--max-time",
                  "5",
                  "-H",
                  "Expect: 100-continue",
                  "--data-binary",
                  data,
                  url[0],
                  NULL};
  curl(argv);
}

EDDY_IO_TEST(http_curl, expect_100_continue_is_answered_without_delay) {
  make_upload(4096);
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, expect_upload);
  cr_assert(eq(int, curl_status, 0), "curl failed: %s", out);
  cr_assert(eq(int, saw_expect, 1));
  cr_assert_not_null(strstr(out, "< HTTP/1.1 100 Continue"), "%s", out);
  /* Without the 100, curl waits a second before sending the body. */
  cr_assert(lt(u64, curl_ms, 900), "curl took %llu ms",
            (unsigned long long)curl_ms);
  expect_upload_answer();
}

static void head_request(http_fixture_t *f) {
  set_urls(f->port);
  char *argv[] = {"curl", "-sS", "-I", "--max-time", "5", url[0], NULL};
  curl(argv);
}

EDDY_IO_TEST(http_curl, head_with_dash_i_shows_get_headers) {
  http_start(&fx, *backend, NULL, app);
  http_run(&fx, head_request);
  cr_assert(eq(int, curl_status, 0), "curl failed: %s", out);
  cr_assert(eq(int, strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0), "%s", out);
  cr_assert_not_null(strstr(out, "Content-Length: 11\r\n"), "%s", out);
  cr_assert_not_null(strstr(out, "Content-Type: text/plain\r\n"), "%s", out);
  cr_assert_null(strstr(out, "hello"), "a body after HEAD: %s", out);
}
