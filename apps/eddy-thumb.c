/* eddy-thumb: the thumbnail service on its own.
 *
 *   eddy-thumb --root DIR [--port N] [--host ADDR] [--backend epoll|io_uring]
 *              [--cache-mb N]
 *
 * Serves:
 *   GET  /thumb?src=NAME&w=W&h=H[&fit=contain|cover][&crop=X,Y,W,H]
 *              [&fmt=jpg|png|webp|gif][&q=1..100]   a file under DIR
 *   POST /thumb?w=W&h=H[...]                         the body's image
 *   GET  /hello    hello world (the loop's responsiveness under image load)
 *   GET  /stats    JSON: service and memory counters
 * Images are made on the worker pool (EDDY_THREADPOOL_SIZE; image jobs use
 * at most half its threads); the loop only parses, caches and answers.
 * SIGINT or SIGTERM closes it gracefully. */
#include "app.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static eddy_loop_t loop;
static eddy_http_server_t server;
static eddy_thumb_service_t thumbs;
static eddy_signal_t sigint, sigterm;

static void send_stats(eddy_http_res_t *res) {
  eddy_thumb_stats_t ts;
  eddy_memory_usage_t mu;
  char json[512];
  eddy_thumb_service_stats(&thumbs, &ts);
  eddy_memory_usage(&loop, &mu);
  int n = snprintf(
      json, sizeof json,
      "{\"backend\":\"%s\",\"requests\":%llu,\"hits\":%llu,\"jobs\":%llu,"
      "\"errors\":%llu,\"in_flight\":%zu,\"cache_entries\":%zu,"
      "\"cache_bytes\":%zu,\"rss\":%zu,\"pool_queued\":%zu,"
      "\"pool_threads\":%zu,\"image_threads\":%u}\n",
      eddy_backend_name(&loop), (unsigned long long)ts.requests,
      (unsigned long long)ts.hits, (unsigned long long)ts.jobs,
      (unsigned long long)ts.errors, ts.in_flight, ts.cache_entries,
      ts.cache_bytes, mu.rss, mu.pool_queued, mu.pool_threads,
      eddy_image_threads());
  eddy_http_set_header(res, "Cache-Control", "no-store");
  app_send(res, 200, "application/json", json, (size_t)n);
}

static int is(const eddy_http_req_t *req, const char *path) {
  size_t n = strlen(path);
  return req->path.len == n && memcmp(req->path.base, path, n) == 0;
}

static void on_request(eddy_http_req_t *req, eddy_http_res_t *res) {
  if (eddy_thumb_serve(&thumbs, req, res))
    return;
  if (is(req, "/hello"))
    app_send(res, 200, "text/plain", "hello world\n", 12);
  else if (is(req, "/stats"))
    send_stats(res);
  else
    app_send(res, 404, "text/plain", "not found\n", 10);
}

static void on_closed(eddy_http_server_t *srv) {
  eddy_thumb_service_close(&thumbs); /* no request is in flight now */
}

static void on_signal(eddy_signal_t *s, int signum) {
  eddy_http_server_close(&server, on_closed);
  eddy_close(&sigint.handle, NULL);
  eddy_close(&sigterm.handle, NULL);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: eddy-thumb --root DIR [--port N] [--host ADDR] "
          "[--backend epoll|io_uring] [--cache-mb N]\n"
          "Thumbnails of the images under DIR, made on the worker pool:\n"
          "  GET  /thumb?src=NAME&w=W&h=H[&fit=contain|cover]"
          "[&crop=X,Y,W,H][&fmt=jpg|png|webp|gif][&q=1..100]\n"
          "  POST /thumb?w=W&h=H[...]   (the image as the body)\n"
          "  GET  /hello, GET /stats\n"
          "Port 8081 unless --port; address 127.0.0.1 unless --host.  "
          "Cache 64 MB unless --cache-mb (0: none).\n"
          "EDDY_THREADPOOL_SIZE sets the pool (image jobs use half of it), "
          "EDDY_IMAGE_THREADS GraphicsMagick's threads per job (1), "
          "EDDY_IMAGE_NICE the nice value of image work (10).\n");
}

typedef struct {
  app_args_t common; /* --port, --host, --backend */
  const char *root;
  long cache_mb;
} args_t;

static int parse_args(int argc, char **argv, args_t *a) {
  for (int i = 1; i < argc; i++) {
    int r = app_option(&a->common, argc, argv, &i);
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (r < 0)
      return -1;
    if (r > 0)
      continue;
    if (v == NULL)
      return -1;
    if (strcmp(k, "--root") == 0) {
      a->root = v;
    } else if (strcmp(k, "--cache-mb") == 0) {
      a->cache_mb = strtol(v, &end, 10);
      if (*end != '\0' || a->cache_mb < 0)
        return -1;
    } else {
      return -1;
    }
    i++;
  }
  return a->root != NULL ? 0 : -1;
}

static int start(const args_t *a) {
  eddy_http_server_options_t hopts;
  eddy_thumb_options_t topts;
  struct sockaddr_storage ss;
  char name[64];
  int v6;
  eddy_http_server_options_init(&hopts);
  hopts.max_body_size = 16u << 20; /* POST /thumb: the service's limit */
  eddy_thumb_options_init(&topts);
  topts.root = a->root;
  topts.cache_bytes = (size_t)a->cache_mb << 20;
  int err = eddy_loop_init(&loop);
  if (err == 0 && (err = eddy_thumb_service_init(&loop, &thumbs, &topts)) != 0)
    fprintf(stderr, "eddy-thumb: root %s: %s\n", a->root, eddy_strerror(err));
  if (err == 0)
    err = eddy_http_server_init(&loop, &server, &hopts, on_request);
  if (err == 0)
    err = app_addr(a->common.host, a->common.port, &ss, &v6);
  if (err == 0)
    err = eddy_http_server_listen(&server, (struct sockaddr *)&ss, 0);
  if (err != 0) {
    fprintf(stderr, "eddy-thumb: %s\n", eddy_strerror(err));
    return err;
  }
  eddy_http_server_address(&server, 0, &ss);
  eddy_addr_name((struct sockaddr *)&ss, name, sizeof name);
  printf("eddy-thumb listening on http://%s (%s), root %s\n", name,
         eddy_backend_name(&loop), a->root);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  args_t a = {{"eddy-thumb", usage, 8081, "127.0.0.1"}, NULL, 64};
  if (parse_args(argc, argv, &a) != 0) {
    usage(stderr);
    return 1;
  }
  if (start(&a) != 0)
    return 1;
  eddy_signal_init(&loop, &sigint);
  eddy_signal_init(&loop, &sigterm);
  eddy_signal_start(&sigint, on_signal, SIGINT);
  eddy_signal_start(&sigterm, on_signal, SIGTERM);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  return eddy_loop_close(&loop) == 0 ? 0 : 1;
}
