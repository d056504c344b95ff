/* eddy-hello: the seed's hello world, and what the perf suite races.
 *
 *   eddy-hello --port N [--host 127.0.0.1] [--backend epoll|io_uring]
 *
 * Every GET (and HEAD) answers 200, Content-Type: text/plain, "hello
 * world", with keep-alive; other methods get 405.  SIGINT or SIGTERM
 * closes the server gracefully. */
#include "app.h"

static eddy_loop_t loop;
static eddy_http_server_t server;
static eddy_signal_t sigint, sigterm;

static void on_request(eddy_http_req_t *req, eddy_http_res_t *res) {
  if (req->method != EDDY_HTTP_GET && req->method != EDDY_HTTP_HEAD) {
    eddy_http_set_status(res, 405);
    eddy_http_set_header(res, "Allow", "GET, HEAD");
    eddy_http_end(res, NULL, 0);
    return;
  }
  eddy_http_set_header(res, "Content-Type", "text/plain");
  eddy_http_end(res, "hello world", 11);
}

static void on_signal(eddy_signal_t *s, int signum) {
  eddy_http_server_close(&server, NULL);
  eddy_close(&sigint.handle, NULL);
  eddy_close(&sigterm.handle, NULL);
}

static void usage(FILE *out) {
  fprintf(out, "usage: eddy-hello --port N [--host ADDR] "
               "[--backend epoll|io_uring]\n"
               "Answers every GET with 200 \"hello world\" (keep-alive).\n");
}

int main(int argc, char **argv) {
  app_args_t a = {"eddy-hello", usage, -1, "127.0.0.1"};
  for (int i = 1; i < argc; i++) {
    if (app_option(&a, argc, argv, &i) <=
        0) { /* it has no options of its own */
      usage(stderr);
      return 1;
    }
  }
  int port = a.port, v6;
  const char *host = a.host;
  struct sockaddr_storage addr;
  if (port < 0) {
    usage(stderr);
    return 1;
  }
  if (app_addr(host, port, &addr, &v6) != 0) {
    fprintf(stderr, "eddy-hello: bad address '%s'\n", host);
    return 1;
  }
  int err = eddy_loop_init(&loop);
  if (err == 0)
    err = eddy_http_server_init(&loop, &server, NULL, on_request);
  if (err != 0) {
    fprintf(stderr, "eddy-hello: %s\n", eddy_strerror(err));
    return 1;
  }
  err = eddy_http_server_listen(&server, (struct sockaddr *)&addr, 0);
  if (err != 0) {
    fprintf(stderr, "eddy-hello: listen on %s:%d: %s\n", host, port,
            eddy_strerror(err));
    eddy_http_server_close(&server, NULL);
    eddy_run(&loop, EDDY_RUN_DEFAULT);
    return 1;
  }
  eddy_signal_init(&loop, &sigint);
  eddy_signal_init(&loop, &sigterm);
  eddy_signal_start(&sigint, on_signal, SIGINT);
  eddy_signal_start(&sigterm, on_signal, SIGTERM);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  return eddy_loop_close(&loop) == 0 ? 0 : 1;
}
