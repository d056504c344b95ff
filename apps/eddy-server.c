/* eddy-server: the showcase server that `make run` starts.
 *
 *   eddy-server [--port N] [--host ADDR] [--backend epoll|io_uring]
 *               [--root DIR]
 *
 * Port 8080 unless --port or PORT says otherwise; 127.0.0.1 and ::1 unless
 * --host or HOST names one address.  Serves:
 *   GET  /        a page listing what is served
 *   GET  /hello   hello world
 *   GET  /stats   JSON: memory (eddy_memory_usage), request counters, backend
 *   POST /echo    the request body streamed back, chunked
 *   GET  /thumb?src=NAME&w=W&h=H...   a thumbnail of an image under the
 *                 root (--root, default ./public); POST /thumb?w=... makes
 *                 one of the body (the thumbnail service, docs/images.md)
 *   GET  /static/...  the files under the root (docs/static.md)
 *   anything else 404
 * SIGINT or SIGTERM closes it gracefully: requests in flight finish. */
#include "app.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static eddy_loop_t loop;
static eddy_http_server_t server;
static eddy_signal_t sigint, sigterm;
static uint64_t started_ms;
static eddy_thumb_service_t thumbs;
static const char *root_dir = "public";
static uint64_t hits_index, hits_hello, hits_stats, hits_echo, hits_404;
static eddy_http_static_t *static_files; /* NULL if the root is missing */

static const char index_page[] =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
    "<title>eddy</title></head>\n<body>\n<h1>eddy</h1>\n"
    "<p>Node's event loop for C, serving you this page.</p>\n<ul>\n"
    "<li><a href=\"/hello\">/hello</a>: hello world</li>\n"
    "<li><a href=\"/stats\">/stats</a>: memory, request counters and the "
    "backend, as JSON</li>\n"
    "<li><code>POST /echo</code>: the request body streamed back "
    "(<code>curl --data-binary @file http://HOST/echo</code>)</li>\n"
    "<li><a href=\"/thumb?src=sample.jpg&amp;w=320&amp;h=200&amp;fit=cover\">"
    "/thumb?src=NAME&amp;w=W&amp;h=H</a>: a thumbnail of an image under the "
    "root (<code>fit=contain|cover</code>, <code>crop=X,Y,W,H</code>, "
    "<code>fmt=jpg|png|webp|gif</code>, <code>q=1..100</code>); "
    "<code>POST /thumb?w=W&amp;h=H</code> with an image as the body</li>\n"
    "<li><a href=\"/static/\">/static/</a>: the files under the root, "
    "sent with sendfile (ranges, ETag, If-Modified-Since)</li>\n"
    "</ul>\n</body></html>\n";

/* ---- Routes -------------------------------------------------------------- */

static void send_stats(eddy_http_res_t *res) {
  eddy_memory_usage_t mu;
  eddy_http_stats_t st;
  char json[1024];
  eddy_memory_usage(&loop, &mu);
  eddy_http_server_stats(&server, &st);
  int n =
      snprintf(json, sizeof json,
               "{\"backend\":\"%s\",\"uptime_ms\":%llu,"
               "\"memory\":{\"rss\":%zu,\"slab_used\":%zu,\"slab_free\":%zu,"
               "\"pool_queued\":%zu,\"pool_threads\":%zu},"
               "\"http\":{\"connections\":%llu,\"open_connections\":%zu,"
               "\"requests\":%llu,\"active_requests\":%zu,\"rejected\":%llu},"
               "\"routes\":{\"/\":%llu,\"/hello\":%llu,\"/stats\":%llu,"
               "\"/echo\":%llu,\"404\":%llu}}\n",
               eddy_backend_name(&loop),
               (unsigned long long)(eddy_now(&loop) - started_ms), mu.rss,
               mu.slab_used, mu.slab_free, mu.pool_queued, mu.pool_threads,
               (unsigned long long)st.connections, st.open_connections,
               (unsigned long long)st.requests, st.active_requests,
               (unsigned long long)st.rejected, (unsigned long long)hits_index,
               (unsigned long long)hits_hello, (unsigned long long)hits_stats,
               (unsigned long long)hits_echo, (unsigned long long)hits_404);
  eddy_http_set_header(res, "Cache-Control", "no-store");
  app_send(res, 200, "application/json", json, (size_t)n);
}

/* /echo writes each piece of the body back as it arrives; when the client
 * reads slower than it sends, reading pauses until the response drains. */
static void echo_body(eddy_http_req_t *req, ssize_t nread,
                      const eddy_slice_t *buf) {
  eddy_http_res_t *res = req->data;
  if (nread < 0) { /* the end, or an error the server answered */
    eddy_http_end(res, NULL, 0);
    return;
  }
  if (eddy_http_write(res, buf->base, (size_t)nread) == EDDY_STREAM_FULL)
    eddy_http_req_read_stop(req);
}

static void echo_drain(eddy_http_res_t *res) {
  eddy_http_req_read_start(res->req, echo_body);
}

static void start_echo(eddy_http_req_t *req, eddy_http_res_t *res) {
  req->data = res;
  eddy_http_set_header(res, "Content-Type", "application/octet-stream");
  eddy_http_res_set_drain_cb(res, echo_drain);
  eddy_http_req_read_start(req, echo_body);
}

static int is(const eddy_http_req_t *req, const char *path) {
  size_t n = strlen(path);
  return req->path.len == n && memcmp(req->path.base, path, n) == 0;
}

static void on_request(eddy_http_req_t *req, eddy_http_res_t *res) {
  if (eddy_thumb_serve(&thumbs, req, res))
    return;
  if (static_files != NULL && eddy_http_static_serve(static_files, req, res))
    return;
  int get = req->method == EDDY_HTTP_GET || req->method == EDDY_HTTP_HEAD;
  if (get && is(req, "/")) {
    hits_index++;
    app_send(res, 200, "text/html; charset=utf-8", index_page,
             sizeof index_page - 1);
  } else if (get && is(req, "/hello")) {
    hits_hello++;
    app_send(res, 200, "text/plain", "hello world\n", 12);
  } else if (get && is(req, "/stats")) {
    hits_stats++;
    send_stats(res);
  } else if (req->method == EDDY_HTTP_POST && is(req, "/echo")) {
    hits_echo++;
    start_echo(req, res);
  } else {
    hits_404++;
    app_send(res, 404, "text/plain", "not found\n", 10);
  }
}

/* ---- Starting and stopping ----------------------------------------------- */

static void on_closed(eddy_http_server_t *srv) {
  eddy_thumb_service_close(&thumbs); /* no request is in flight now */
  eddy_http_static_close(static_files);
  fprintf(stderr, "eddy-server: closed\n");
}

static void on_signal(eddy_signal_t *s, int signum) {
  fprintf(stderr, "eddy-server: %s, finishing requests in flight\n",
          signum == SIGINT ? "SIGINT" : "SIGTERM");
  eddy_http_server_close(&server, on_closed);
  eddy_close(&sigint.handle, NULL);
  eddy_close(&sigterm.handle, NULL);
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: eddy-server [--port N] [--host ADDR] "
          "[--backend epoll|io_uring] [--root DIR]\n"
          "The showcase HTTP server: / (index), /hello, /stats, POST /echo,\n"
          "/static/ (the files under the root) and /thumb (thumbnails of its "
          "images).\n"
          "Root: --root, else ./public.\n"
          "Port: --port, else $PORT, else 8080.  Address: --host, else "
          "$HOST, else 127.0.0.1 and ::1.\n"
          "SIGINT or SIGTERM stops it gracefully.\n");
}

static int parse_args(int argc, char **argv, app_args_t *a) {
  for (int i = 1; i < argc; i++) {
    int r = app_option(a, argc, argv, &i);
    if (r < 0)
      return -1;
    if (r > 0)
      continue;
    if (strcmp(argv[i], "--root") != 0 || i + 1 == argc)
      return -1;
    root_dir = argv[++i];
  }
  return a->port >= 0 ? 0 : -1;
}

/* Listens on host:port and says so; 0, or the error. */
static int listen_on(const char *host, int port) {
  struct sockaddr_storage ss;
  char name[64];
  int v6;
  int err = app_addr(host, port, &ss, &v6);
  if (err == 0)
    err = eddy_http_server_listen(&server, (struct sockaddr *)&ss,
                                  v6 ? EDDY_TCP_IPV6ONLY : 0);
  if (err != 0)
    return err;
  /* The bound address of the listener just added: the last one. */
  unsigned n = 0;
  while (eddy_http_server_address(&server, n + 1, &ss) == 0)
    n++;
  eddy_http_server_address(&server, n, &ss);
  eddy_addr_name((struct sockaddr *)&ss, name, sizeof name);
  printf("eddy-server listening on http://%s (%s)\n", name,
         eddy_backend_name(&loop));
  fflush(stdout);
  return 0;
}

/* The default: both loopbacks; the IPv6 one only if this host has it. */
static int listen_all(const char *host, int port) {
  if (host != NULL)
    return listen_on(host, port);
  int err = listen_on("127.0.0.1", port);
  if (err == 0) {
    int e6 = listen_on("::1", port);
    if (e6 != 0 && e6 != EDDY_EADDRNOTAVAIL && e6 != EDDY_EAFNOSUPPORT)
      fprintf(stderr, "eddy-server: [::1]:%d: %s\n", port, eddy_strerror(e6));
  }
  return err;
}

int main(int argc, char **argv) {
  const char *env_port = getenv("PORT"), *env_host = getenv("HOST");
  app_args_t a = {"eddy-server", usage,
                  env_port != NULL ? app_parse_port(env_port) : 8080,
                  env_host != NULL && *env_host != '\0' ? env_host : NULL};
  if (parse_args(argc, argv, &a) != 0) {
    usage(stderr);
    return 1;
  }
  int port = a.port;
  const char *host = a.host;
  eddy_http_server_options_t opts;
  eddy_http_server_options_init(&opts);
  opts.max_body_size = 64u << 20; /* /echo streams: it holds no body */
  int err = eddy_loop_init(&loop);
  eddy_thumb_options_t topts;
  eddy_thumb_options_init(&topts);
  topts.root = root_dir;
  if (err == 0 && eddy_thumb_service_init(&loop, &thumbs, &topts) != 0) {
    fprintf(stderr,
            "eddy-server: root %s: not found, /thumb serves only "
            "POST\n",
            root_dir);
    topts.root = NULL;
    err = eddy_thumb_service_init(&loop, &thumbs, &topts);
  }
  eddy_http_static_options_t sopts;
  eddy_http_static_options_init(&sopts);
  sopts.root = root_dir;
  sopts.prefix = "/static/";
  if (err == 0 && eddy_http_static_init(&loop, &static_files, &sopts) != 0)
    fprintf(stderr, "eddy-server: root %s: not found, /static/ is off\n",
            root_dir);
  if (err == 0)
    err = eddy_http_server_init(&loop, &server, &opts, on_request);
  if (err != 0) {
    fprintf(stderr, "eddy-server: %s\n", eddy_strerror(err));
    return 1;
  }
  started_ms = eddy_now(&loop);
  err = listen_all(host, port);
  if (err != 0) {
    fprintf(stderr, "eddy-server: listen on %s:%d: %s\n",
            host != NULL ? host : "127.0.0.1", port, eddy_strerror(err));
    eddy_http_server_close(&server, NULL);
    eddy_run(&loop, EDDY_RUN_DEFAULT);
    eddy_loop_close(&loop);
    return 1;
  }
  eddy_signal_init(&loop, &sigint);
  eddy_signal_init(&loop, &sigterm);
  eddy_signal_start(&sigint, on_signal, SIGINT);
  eddy_signal_start(&sigterm, on_signal, SIGTERM);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  return eddy_loop_close(&loop) == 0 ? 0 : 1;
}
