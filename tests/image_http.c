/* The thumbnail service through curl, on both backends: GET from the root
 * with the cache, POST with the image as the body, every error answer,
 * and the jail (.., absolute paths, a symlink out of the root). */
#include <stdarg.h>

#include "http_helpers.h"
#include "image_helpers.h"

TestSuite(image_http, .timeout = 60);

static http_fixture_t fx;
static eddy_thumb_service_t svc;

/* What one curl run saw: the status, X-Cache, and the body in a file. */
typedef struct {
  int code;
  char cache[8];
  char type[40];
  char body[400];
} got_t;

#define NGOT 16
static got_t got[NGOT];
static int ngot;

static void app(eddy_http_req_t *req, eddy_http_res_t *res) {
  if (!eddy_thumb_serve(&svc, req, res)) {
    eddy_http_set_status(res, 404);
    eddy_http_end(res, "no\n", 3);
  }
}

/* Runs curl for path (relative to the server) with extra arguments
 * (NULL-terminated), the body into img_dir/out-N.  Client thread: records
 * only. */
static void fetch(http_fixture_t *f, const char *path, ...) {
  char url[512], out[4096], file[160], *argv[24];
  int n = 0;
  got_t *g = &got[ngot];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, path);
  snprintf(file, sizeof file, "%s/out-%d", img_dir, ngot++);
  argv[n++] = "curl";
  argv[n++] = "-sS";
  argv[n++] = "--max-time";
  argv[n++] = "20";
  argv[n++] = "-D-";
  argv[n++] = "-o";
  argv[n++] = file;
  va_list ap;
  va_start(ap, path);
  for (char *a; (a = va_arg(ap, char *)) != NULL && n < 22;)
    argv[n++] = a;
  va_end(ap);
  argv[n++] = url;
  argv[n] = NULL;
  memset(g, 0, sizeof *g);
  if (tc_run(argv, out, sizeof out, NULL) != 0) {
    g->code = -1;
    return;
  }
  const char *st = strstr(out, "HTTP/1.1 ");
  g->code = st != NULL ? atoi(st + 9) : -2;
  const char *xc = strcasestr(out, "X-Cache: ");
  if (xc != NULL)
    sscanf(xc + 9, "%7s", g->cache);
  const char *ct = strcasestr(out, "Content-Type: ");
  if (ct != NULL)
    sscanf(ct + 14, "%39[^\r\n]", g->type);
  FILE *fp = fopen(file, "rb");
  if (fp != NULL) {
    size_t k = fread(g->body, 1, sizeof g->body - 1, fp);
    g->body[k] = '\0';
    fclose(fp);
  }
}

static int cache_posts = 1;

static void start(const char *backend, size_t max_body) {
  eddy_http_server_options_t hopts;
  eddy_thumb_options_t topts;
  img_skip_under_valgrind();
  img_dir_make();
  GM("convert", "-size", "640x480", "plasma:fractal", "-quality", "85",
     (char *)img_path("a.jpg"));
  GM("convert", "-size", "300x200", "gradient:red-blue",
     (char *)img_path("b.png"));
  eddy_http_server_options_init(&hopts);
  hopts.max_body_size = 1u << 20;
  http_start(&fx, backend, &hopts, app);
  eddy_thumb_options_init(&topts);
  topts.root = img_dir;
  topts.max_body = max_body;
  topts.cache_posts = cache_posts;
  cr_assert(eq(int, eddy_thumb_service_init(&fx.loop, &svc, &topts), 0));
  ngot = 0;
}

static void finish_run(void (*client)(http_fixture_t *)) {
  http_run(&fx, client);
  eddy_thumb_stats_t st;
  eddy_thumb_service_stats(&svc, &st);
  cr_assert(eq(sz, st.in_flight, (size_t)0));
  eddy_thumb_service_close(&svc);
}

static void expect(int i, int code) {
  cr_assert(eq(int, got[i].code, code), "request %d: %d, %s", i, got[i].code,
            got[i].body);
}

static void expect_image(int i, const char *fmt, unsigned long w,
                         unsigned long h) {
  char name[32], f[16];
  unsigned long iw, ih;
  expect(i, 200);
  snprintf(name, sizeof name, "out-%d", i);
  img_identify(img_path(name), f, &iw, &ih);
  cr_assert(eq(str, f, (char *)fmt));
  cr_assert(eq(ulong, iw, w));
  cr_assert(eq(ulong, ih, h));
}

/* ---- GET ----------------------------------------------------------------- */

static void get_client(http_fixture_t *f) {
  fetch(f, "/thumb?src=a.jpg&w=320&h=200&fit=cover", NULL);
  fetch(f, "/thumb?src=a.jpg&w=320&h=200&fit=cover", NULL);
  fetch(f, "/thumb?src=a.jpg&w=100&h=100&fmt=png", NULL);
  fetch(f, "/thumb?src=b.png&crop=10,20,100,50&fmt=webp&q=60", NULL);
  fetch(f, "/thumb?src=a%2ejpg&w=64", "-I", NULL); /* HEAD, encoded */
}

EDDY_IO_TEST(image_http, get_makes_thumbnails_and_caches_them) {
  start(*backend, 1u << 20);
  finish_run(get_client);
  expect_image(0, "JPEG", 320, 200);
  cr_assert(eq(str, got[0].cache, "MISS"));
  cr_assert(eq(str, got[0].type, "image/jpeg"));
  expect_image(1, "JPEG", 320, 200);
  cr_assert(eq(str, got[1].cache, "HIT"));
  expect_image(2, "PNG", 100, 75);
  cr_assert(eq(str, got[2].type, "image/png"));
  expect_image(3, "WEBP", 100, 50);
  expect(4, 200);
  eddy_thumb_stats_t st;
  eddy_thumb_service_stats(&svc, &st);
  cr_assert(eq(u64, st.requests, 5));
  cr_assert(eq(u64, st.hits, 1));
  cr_assert(eq(u64, st.jobs, 4));
}

/* ---- POST ---------------------------------------------------------------- */

static char post_png[200], post_junk[200], post_bomb[200];

static void post_client(http_fixture_t *f) {
  fetch(f, "/thumb?w=150&fmt=gif", "--data-binary", post_png, NULL);
  fetch(f, "/thumb?w=150&fmt=gif", "--data-binary", post_png, "-H",
        "Transfer-Encoding: chunked", NULL);
  fetch(f, "/thumb?w=150", "--data-binary", post_junk, NULL);
  fetch(f, "/thumb?w=150", "--data-binary", post_bomb, NULL);
  fetch(f, "/thumb?w=150", "--data-binary", "", NULL);
}

EDDY_IO_TEST(image_http, post_makes_a_thumbnail_of_the_body) {
  start(*backend, 1u << 20);
  unsigned char bomb[256];
  img_write(img_path("bomb.png"), bomb, img_bomb_png(bomb, 50000, 50000));
  img_write(img_path("junk.bin"), "this is not an image at all", 27);
  snprintf(post_png, sizeof post_png, "@%s", img_path("b.png"));
  snprintf(post_junk, sizeof post_junk, "@%s", img_path("junk.bin"));
  snprintf(post_bomb, sizeof post_bomb, "@%s", img_path("bomb.png"));
  finish_run(post_client);
  expect_image(0, "GIF", 150, 100);
  cr_assert(eq(str, got[0].cache, "MISS"));
  expect_image(1, "GIF", 150, 100); /* the same body, chunked: a hit */
  cr_assert(eq(str, got[1].cache, "HIT"));
  expect(2, 422);
  expect(3, 413);
  cr_assert_not_null(strstr(got[3].body, "50000x50000"), "%s", got[3].body);
  expect(4, 422); /* zero bytes */
}

static void twice_client(http_fixture_t *f) {
  fetch(f, "/thumb?w=150&fmt=gif", "--data-binary", post_png, NULL);
  fetch(f, "/thumb?w=150&fmt=gif", "--data-binary", post_png, NULL);
  fetch(f, "/thumb?src=b.png&w=150", NULL);
  fetch(f, "/thumb?src=b.png&w=150", NULL);
}

EDDY_IO_TEST(image_http, post_cache_can_be_turned_off) {
  cache_posts = 0;
  start(*backend, 1u << 20);
  snprintf(post_png, sizeof post_png, "@%s", img_path("b.png"));
  finish_run(twice_client);
  expect_image(0, "GIF", 150, 100);
  cr_assert(eq(str, got[0].cache, "MISS"));
  expect_image(1, "GIF", 150, 100);
  cr_assert(eq(str, got[1].cache, "MISS"));
  expect_image(3, "PNG", 150, 100);
  cr_assert(eq(str, got[3].cache, "HIT")); /* GETs are still cached */
}

static char big_body[200];

static void limit_client(http_fixture_t *f) {
  fetch(f, "/thumb?w=150", "--data-binary", big_body, NULL);
  fetch(f, "/thumb?w=150", "--data-binary", big_body, "-H",
        "Transfer-Encoding: chunked", NULL);
  fetch(f, "/thumb?w=150", "--data-binary", post_png, NULL);
}

/* The service's own limit, below the server's: by Content-Length at once,
 * and while a chunked body streams in. */
EDDY_IO_TEST(image_http, post_over_the_body_limit_is_413) {
  start(*backend, 3000);
  snprintf(big_body, sizeof big_body, "@%s", img_path("a.jpg"));
  snprintf(post_png, sizeof post_png, "@%s", img_path("b.png"));
  finish_run(limit_client);
  expect(0, 413);
  expect(1, 413);
  expect(2, 200); /* the connection's next request is served */
}

/* ---- Errors and the jail ------------------------------------------------- */

static void error_client(http_fixture_t *f) {
  fetch(f, "/thumb?src=a.jpg", NULL);                    /* 0: no size */
  fetch(f, "/thumb?src=a.jpg&w=0", NULL);                /* 1 */
  fetch(f, "/thumb?src=a.jpg&w=10&fit=squash", NULL);    /* 2 */
  fetch(f, "/thumb?src=a.jpg&w=10&q=101", NULL);         /* 3 */
  fetch(f, "/thumb?src=a.jpg&crop=1,2,3", NULL);         /* 4 */
  fetch(f, "/thumb?src=nope.jpg&w=10", NULL);            /* 5 */
  fetch(f, "/thumb?src=../a.jpg&w=10", NULL);            /* 6 */
  fetch(f, "/thumb?src=%2Fetc%2Fpasswd&w=10", NULL);     /* 7 */
  fetch(f, "/thumb?src=out&w=10", NULL);                 /* 8: symlink */
  fetch(f, "/thumb?src=junk.jpg&w=10", NULL);            /* 9 */
  fetch(f, "/thumb?src=a.jpg&crop=600,0,100,100", NULL); /* 10 */
  fetch(f, "/thumb?src=a.jpg&w=10", "-X", "PUT", NULL);  /* 11 */
  fetch(f, "/thumb?src=sub&w=10", NULL);                 /* 12: a dir */
  fetch(f, "/thumb?src=a%00.jpg&w=10", NULL);            /* 13 */
  fetch(f, "/thumb?src=inside&w=10", NULL);              /* 14 */
}

EDDY_IO_TEST(image_http, errors_get_their_status_and_the_root_is_a_jail) {
  start(*backend, 1u << 20);
  img_write(img_path("junk.jpg"), "not a jpeg", 10);
  cr_assert(eq(int, symlink("/etc/hostname", img_path("out")), 0));
  cr_assert(eq(int, symlink("a.jpg", img_path("inside")), 0));
  cr_assert(eq(int, mkdir(img_path("sub"), 0700), 0));
  finish_run(error_client);
  int want[] = {400, 400, 400, 400, 400, 404, 403, 403,
                403, 422, 400, 405, 404, 400, 200};
  for (int i = 0; i < (int)(sizeof want / sizeof want[0]); i++)
    expect(i, want[i]);
  cr_assert_not_null(strstr(got[9].body, "422"), "%s", got[9].body);
}
