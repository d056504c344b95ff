/* Static file serving through curl: types, validators and 304s, ranges,
 * HEAD, directory index, 404/405, the jail (traversal attempts, encoded
 * slashes, NUL, symlinks out), a changed file seen through the cache,
 * pipelined file responses, and a 100 MB file byte-identical. */
#include <fcntl.h>
#include <sys/stat.h>

#include "http_helpers.h"

TestSuite(http_static, .timeout = 60);

#define SECRET "TOPSECRET-outside-the-root"

static http_fixture_t fx;
static eddy_http_static_t *files;
static char dir[64], root[96];

/* ---- The tree served ------------------------------------------------------
 */

static void put(const char *rel, const char *content) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  FILE *f = fopen(p, "wb");
  cr_assert_not_null(f, "%s", p);
  fputs(content, f);
  fclose(f);
}

static void sub(const char *rel) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  cr_assert(eq(int, mkdir(p, 0755), 0), "mkdir %s", p);
}

static void link_to(const char *target, const char *rel) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  cr_assert(eq(int, symlink(target, p), 0), "symlink %s", p);
}

/* dir/outside.txt (the secret), dir/root/ the files served. */
static void make_tree(void) {
  /* mkdtemp: a directory left by an earlier run (a crashed test does not
   * clean up) must not make this one fail. */
  snprintf(dir, sizeof dir, "/tmp/eddy-static-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(root, sizeof root, "%s/root", dir);
  put("outside.txt", SECRET "\n");
  sub("root");
  sub("root/sub");
  sub("root/empty");
  put("root/a.txt", "alpha\n");
  put("root/b.txt", "bravo\n");
  put("root/page.html", "<p>page</p>\n");
  put("root/style.css", "p{}\n");
  put("root/data.bin", "\x01\x02\x03");
  put("root/sub/index.html", "<p>sub index</p>\n");
  put("root/Makefile", "inner makefile\n");
  link_to("../outside.txt", "root/link.txt");
  link_to("..", "root/up");
  link_to("a.txt", "root/alias.txt");
}

static void remove_tree(void) {
  char cmd[128];
  char *argv[] = {"rm", "-rf", dir, NULL};
  tc_run(argv, cmd, sizeof cmd, NULL);
}

static void static_app(eddy_http_req_t *req, eddy_http_res_t *res) {
  if (eddy_http_static_serve(files, req, res))
    return;
  eddy_http_end(res, "not static", 10);
}

static void start(const char *backend, uint64_t valid_ms) {
  eddy_http_static_options_t so;
  make_tree();
  http_start(&fx, backend, NULL, static_app);
  eddy_http_static_options_init(&so);
  so.root = root;
  so.prefix = "/static";
  so.cache_valid_ms = valid_ms;
  int err = eddy_http_static_init(&fx.loop, &files, &so);
  cr_assert(eq(int, err, 0), "%s", eddy_err_name(err));
}

static void stop(void) {
  eddy_http_static_close(files);
  remove_tree();
}

/* ---- Running curl from the client thread --------------------------------- */

#define MAX_RUNS 40
typedef struct {
  char out[8192];
  int rc;
  int status;
} run_t;

static run_t runs[MAX_RUNS];
static int nruns;
static char etag[64], lastmod[64];

/* curl -s -i --path-as-is [extra...] URL-path; records the output and the
 * status of the last response in it. */
static run_t *get(const char *path, const char *a1, const char *a2,
                  const char *a3, const char *a4) {
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx.port, path);
  char *argv[16] = {"curl", "-s", "-i", "--path-as-is", "--max-time", "10"};
  int n = 6;
  const char *extra[] = {a1, a2, a3, a4};
  for (int i = 0; i < 4; i++)
    if (extra[i] != NULL)
      argv[n++] = (char *)extra[i];
  argv[n++] = url;
  argv[n] = NULL;
  run_t *r = &runs[nruns++ % MAX_RUNS];
  size_t len;
  r->rc = tc_run(argv, r->out, sizeof r->out, &len);
  r->status = 0;
  for (const char *p = r->out; (p = strstr(p, "HTTP/1.1 ")) != NULL; p += 9)
    r->status = atoi(p + 9);
  return r;
}

/* The value of a header in a recorded response, copied into out. */
static const char *header(const run_t *r, const char *name, char *out,
                          size_t cap) {
  size_t n = strlen(name);
  out[0] = '\0';
  for (const char *p = r->out; *p != '\0';) {
    const char *eol = strstr(p, "\r\n");
    if (eol == NULL || eol == p)
      break;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      size_t vl = (size_t)(eol - p - n - 2);
      if (vl >= cap)
        vl = cap - 1;
      memcpy(out, p + n + 2, vl);
      out[vl] = '\0';
      return out;
    }
    p = eol + 2;
  }
  return NULL;
}

static const char *body(const run_t *r) {
  const char *b = strstr(r->out, "\r\n\r\n");
  return b != NULL ? b + 4 : "";
}

/* Every case's outputs, kept for the test thread to check. */
static run_t r_get, r_head, r_range, r_suffix, r_open, r_416, r_multi, r_inm,
    r_ims, r_ims_old, r_html, r_css, r_bin, r_dir, r_dir_bare, r_empty,
    r_missing, r_post, r_alias, r_inner;
#define NTRAV 10
static const char *trav_paths[NTRAV] = {
    "/static/../outside.txt",       "/static/%2e%2e/outside.txt",
    "/static/%2E%2E/outside.txt",   "/static/..%2foutside.txt",
    "/static/%2e%2e%2foutside.txt", "/static/sub/..%5c..%5coutside.txt",
    "/static/a.txt%00.html",        "/static/link.txt",
    "/static/up/outside.txt",       "/static/../Makefile"};
static run_t r_trav[NTRAV];

static void client_suite(http_fixture_t *f) {
  char ims[96], inm[96];
  r_get = *get("/static/a.txt", NULL, NULL, NULL, NULL);
  header(&r_get, "ETag", etag, sizeof etag);
  header(&r_get, "Last-Modified", lastmod, sizeof lastmod);
  r_head = *get("/static/a.txt", "-I", NULL, NULL, NULL);
  r_range = *get("/static/a.txt", "-H", "Range: bytes=1-3", NULL, NULL);
  r_suffix = *get("/static/a.txt", "-H", "Range: bytes=-2", NULL, NULL);
  r_open = *get("/static/a.txt", "-H", "Range: bytes=4-", NULL, NULL);
  r_416 = *get("/static/a.txt", "-H", "Range: bytes=10-", NULL, NULL);
  r_multi = *get("/static/a.txt", "-H", "Range: bytes=0-1,3-4", NULL, NULL);
  snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
  r_inm = *get("/static/a.txt", "-H", inm, NULL, NULL);
  snprintf(ims, sizeof ims, "If-Modified-Since: %s", lastmod);
  r_ims = *get("/static/a.txt", "-H", ims, NULL, NULL);
  r_ims_old =
      *get("/static/a.txt", "-H",
           "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT", NULL, NULL);
  r_html = *get("/static/page.html", NULL, NULL, NULL, NULL);
  r_css = *get("/static/style.css", NULL, NULL, NULL, NULL);
  r_bin = *get("/static/data.bin", NULL, NULL, NULL, NULL);
  r_dir = *get("/static/sub/", NULL, NULL, NULL, NULL);
  r_dir_bare = *get("/static/sub", NULL, NULL, NULL, NULL);
  r_empty = *get("/static/empty/", NULL, NULL, NULL, NULL);
  r_missing = *get("/static/missing.txt", NULL, NULL, NULL, NULL);
  r_post = *get("/static/a.txt", "-X", "POST", NULL, NULL);
  r_alias = *get("/static/alias.txt", NULL, NULL, NULL, NULL);
  r_inner = *get("/static/Makefile", NULL, NULL, NULL, NULL);
  for (int i = 0; i < NTRAV; i++)
    r_trav[i] = *get(trav_paths[i], NULL, NULL, NULL, NULL);
}

static void expect(const run_t *r, int status, const char *text) {
  cr_assert(eq(int, r->rc, 0), "curl failed: %s", r->out);
  cr_assert(eq(int, r->status, status), "%s", r->out);
  if (text != NULL)
    cr_assert_not_null(strstr(r->out, text), "want '%s' in:\n%s", text, r->out);
}

EDDY_IO_TEST(http_static, answers_get_head_ranges_and_conditionals) {
  char v[128];
  start(*backend, 3600 * 1000);
  http_run(&fx, client_suite);
  expect(&r_get, 200, "Content-Length: 6\r\n");
  cr_assert(eq(str, (char *)body(&r_get), "alpha\n"));
  cr_assert(eq(str, (char *)header(&r_get, "Content-Type", v, sizeof v),
               "text/plain; charset=utf-8"));
  cr_assert(etag[0] == '"' && lastmod[0] != '\0', "%s", r_get.out);
  /* HEAD: the same head, no body. */
  expect(&r_head, 200, "Content-Length: 6\r\n");
  cr_assert(eq(str, (char *)header(&r_head, "ETag", v, sizeof v), etag));
  cr_assert(eq(str, (char *)body(&r_head), ""));
  expect(&r_range, 206, "Content-Range: bytes 1-3/6\r\n");
  cr_assert(eq(str, (char *)body(&r_range), "lph"));
  expect(&r_suffix, 206, "Content-Range: bytes 4-5/6\r\n");
  cr_assert(eq(str, (char *)body(&r_suffix), "a\n"));
  expect(&r_open, 206, "Content-Length: 2\r\n");
  cr_assert(eq(str, (char *)body(&r_open), "a\n"));
  expect(&r_416, 416, "Content-Range: bytes */6\r\n");
  expect(&r_multi, 200, NULL); /* several ranges: ignored */
  cr_assert(eq(str, (char *)body(&r_multi), "alpha\n"));
  expect(&r_inm, 304, NULL);
  cr_assert(eq(str, (char *)body(&r_inm), ""));
  expect(&r_ims, 304, NULL);
  expect(&r_ims_old, 200, NULL);
  cr_assert(eq(str, (char *)body(&r_ims_old), "alpha\n"));
  expect(&r_html, 200, "Content-Type: text/html; charset=utf-8\r\n");
  expect(&r_css, 200, "Content-Type: text/css; charset=utf-8\r\n");
  expect(&r_bin, 200, "Content-Type: application/octet-stream\r\n");
  expect(&r_dir, 200, "<p>sub index</p>");
  expect(&r_dir_bare, 200, "<p>sub index</p>");
  expect(&r_empty, 404, NULL);
  expect(&r_missing, 404, NULL);
  expect(&r_post, 405, "Allow: GET, HEAD\r\n");
  expect(&r_alias, 200, "alpha"); /* a symlink inside the root is fine */
  expect(&r_inner, 200, "inner makefile");
  eddy_http_static_stats_t st;
  eddy_http_static_stats(files, &st);
  cr_assert(st.cache_hits >= 9, "hits %llu", (unsigned long long)st.cache_hits);
  stop();
}

EDDY_IO_TEST(http_static, the_root_is_a_jail) {
  start(*backend, 3600 * 1000);
  http_run(&fx, client_suite);
  for (int i = 0; i < NTRAV; i++) {
    const run_t *r = &r_trav[i];
    cr_assert(eq(int, r->rc, 0), "%s: curl: %s", trav_paths[i], r->out);
    cr_assert(r->status == 403 || r->status == 404, "%s: %d\n%s", trav_paths[i],
              r->status, r->out);
    cr_assert_null(strstr(r->out, SECRET), "%s leaked:\n%s", trav_paths[i],
                   r->out);
    cr_assert_null(strstr(r->out, "inner makefile"), "%s", r->out);
  }
  stop();
}

/* ---- A changed file is seen ------------------------------------------------
 */

static run_t r_before, r_after;

static void client_change(http_fixture_t *f) {
  r_before = *get("/static/a.txt", NULL, NULL, NULL, NULL);
  put("root/a.txt", "changed content\n");
  usleep(150 * 1000); /* past the 50 ms the cache trusts an entry */
  r_after = *get("/static/a.txt", NULL, NULL, NULL, NULL);
}

EDDY_IO_TEST(http_static, a_changed_file_is_seen_after_revalidation) {
  start(*backend, 50);
  http_run(&fx, client_change);
  expect(&r_before, 200, NULL);
  cr_assert(eq(str, (char *)body(&r_before), "alpha\n"));
  expect(&r_after, 200, "Content-Length: 16\r\n");
  cr_assert(eq(str, (char *)body(&r_after), "changed content\n"));
  stop();
}

/* ---- Pipelined file responses keep their order ------------------------------
 */

static char pipelined[4096];
static size_t pipelined_len;

static void client_pipelined(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  if (fd < 0)
    return;
  tc_sends(fd, "GET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               "HEAD /static/b.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /static/b.txt HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /static/nope HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /static/a.txt HTTP/1.1\r\nHost: x\r\n"
               "Connection: close\r\n\r\n");
  int end;
  pipelined_len = tc_read_all(fd, pipelined, sizeof pipelined - 1, &end);
  pipelined[pipelined_len] = '\0';
  close(fd);
}

EDDY_IO_TEST(http_static, pipelined_file_responses_keep_their_order) {
  start(*backend, 3600 * 1000);
  http_run(&fx, client_pipelined);
  const char *p = pipelined;
  static const char *want[] = {"200 OK",  "alpha\n",       "200 OK", "200 OK",
                               "bravo\n", "404 Not Found", "200 OK", "alpha\n"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const char *q = strstr(p, want[i]);
    cr_assert_not_null(q, "'%s' (#%zu) missing after:\n%s", want[i], i, p);
    p = q + strlen(want[i]);
  }
  cr_assert_null(strstr(p, "HTTP/1.1"), "a response too many: %s", p);
  stop();
}

/* ---- 100 MB through curl
 * ------------------------------------------------------- */

#define BIG (100u << 20)
static char big_out[256];
static int big_rc, cmp_rc;
static char cmp_out[256];

static void client_big(http_fixture_t *f) {
  char url[128], dst[128], src[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/static/big.bin", f->port);
  snprintf(dst, sizeof dst, "%s/got.bin", dir);
  snprintf(src, sizeof src, "%s/big.bin", root);
  char *argv[] = {"curl", "-sS", "--max-time", "30", "-o", dst, url, NULL};
  big_rc = tc_run(argv, big_out, sizeof big_out, NULL);
  char *cmp[] = {"cmp", src, dst, NULL};
  cmp_rc = tc_run(cmp, cmp_out, sizeof cmp_out, NULL);
}

EDDY_IO_TEST(http_static, a_100_mb_file_arrives_byte_identical) {
  start(*backend, 3600 * 1000);
  char p[160];
  snprintf(p, sizeof p, "%s/big.bin", root);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert(fd >= 0);
  static char block[1 << 20];
  for (size_t off = 0; off < BIG; off += sizeof block) {
    for (size_t i = 0; i < sizeof block; i += 512) /* every 512th byte */
      block[i] = body_byte(off + i);
    cr_assert(eq(sz, (size_t)write(fd, block, sizeof block), sizeof block));
  }
  close(fd);
  http_run(&fx, client_big);
  cr_assert(eq(int, big_rc, 0), "curl: %s", big_out);
  cr_assert(eq(int, cmp_rc, 0), "cmp: %s", cmp_out);
  stop();
}

/* ---- Keep-alive after a file larger than the high-water mark ------------- */

static int ka_ok[2];

/* Reads one response with a Content-Length body; 1 if it came whole. */
static int read_response(int fd, size_t want_body) {
  static char buf[1 << 16];
  size_t len = 0, body = 0;
  char *end = NULL;
  while (end == NULL) {
    ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (n <= 0)
      return 0;
    len += (size_t)n;
    buf[len] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
    return 0;
  body = len - (size_t)(end + 4 - buf);
  while (body < want_body) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      return 0;
    body += (size_t)n;
  }
  return body == want_body;
}

static void client_keepalive(http_fixture_t *f) {
  int fd = tc_connect(f->port);
  if (fd < 0)
    return;
  /* The second request goes out only after the first answer is read: the
   * connection stopped reading while the file filled its queue, and must
   * read again once it drained. */
  for (int i = 0; i < 2; i++) {
    tc_sends(fd, "GET /static/mid.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    ka_ok[i] = read_response(fd, 1 << 20);
  }
  close(fd);
}

EDDY_IO_TEST(http_static, keep_alive_goes_on_after_a_large_file) {
  eddy_http_server_options_t so;
  eddy_http_server_options_init(&so);
  so.keepalive_timeout_ms = 60000; /* a stall must not end by the timeout */
  start(*backend, 3600 * 1000);
  char p[160];
  snprintf(p, sizeof p, "%s/mid.bin", root);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert(fd >= 0);
  cr_assert(eq(int, ftruncate(fd, 1 << 20), 0));
  close(fd);
  fx.srv.opts.keepalive_timeout_ms = so.keepalive_timeout_ms;
  http_run(&fx, client_keepalive);
  cr_assert(eq(int, ka_ok[0], 1));
  cr_assert(eq(int, ka_ok[1], 1), "the second answer on the connection");
  stop();
}

/* ---- A client that resets the connection mid-file ---------------------------
 */

static int after_reset_ok;

static void client_resets(http_fixture_t *f) {
  for (int i = 0; i < 16; i++) {
    int fd = tc_connect(f->port);
    if (fd < 0)
      return;
    char buf[4096];
    tc_sends(fd, "GET /static/mid.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /static/mid.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    recv(fd, buf, sizeof buf, 0);
    struct linger lg = {1, 0}; /* close with RST while the server sends */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
  }
  usleep(50 * 1000);
  int fd = tc_connect(f->port);
  if (fd < 0)
    return;
  tc_sends(fd, "GET /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
  after_reset_ok = read_response(fd, 6);
  close(fd);
}

/* sendfile has no MSG_NOSIGNAL: without care, the reset peer's SIGPIPE
 * would kill the server (and this test's process). */
EDDY_IO_TEST(http_static, a_reset_mid_file_does_not_kill_the_server) {
  start(*backend, 3600 * 1000);
  char p[160];
  snprintf(p, sizeof p, "%s/mid.bin", root);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert(fd >= 0);
  cr_assert(eq(int, ftruncate(fd, 16 << 20), 0));
  close(fd);
  http_run(&fx, client_resets);
  cr_assert(eq(int, after_reset_ok, 1));
  stop();
}

/* ---- The cache is bounded ------------------------------------------------------ */

static run_t r_lru[4];

static void client_lru(http_fixture_t *f) {
  static const char *p[] = {"/static/a.txt", "/static/b.txt",
                            "/static/page.html", "/static/a.txt"};
  for (int i = 0; i < 4; i++)
    r_lru[i] = *get(p[i], NULL, NULL, NULL, NULL);
}

EDDY_IO_TEST(http_static, the_cache_keeps_at_most_its_entries) {
  eddy_http_static_options_t so;
  make_tree();
  http_start(&fx, *backend, NULL, static_app);
  eddy_http_static_options_init(&so);
  so.root = root;
  so.prefix = "/static/";
  so.cache_entries = 2;
  so.cache_valid_ms = 3600 * 1000;
  cr_assert(eq(int, eddy_http_static_init(&fx.loop, &files, &so), 0));
  http_run(&fx, client_lru);
  for (int i = 0; i < 4; i++)
    expect(&r_lru[i], 200, NULL);
  cr_assert(eq(str, (char *)body(&r_lru[3]), "alpha\n"));
  eddy_http_static_stats_t st;
  eddy_http_static_stats(files, &st);
  /* a, b, page (a leaves: least recently used), a again (b leaves). */
  cr_assert(eq(sz, st.cached, 2));
  cr_assert(eq(u64, st.opens, 4));
  cr_assert(eq(u64, st.cache_hits, 0));
  stop();
}
