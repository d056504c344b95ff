/* eddy-hello: the seed's hello world, and what the perf suite races.
 *
 *   eddy-hello --port N [--host 127.0.0.1] [--backend epoll|io_uring]
 *
 * Every GET (and HEAD) answers 200, Content-Type: text/plain, "hello
 * world", with keep-alive; other methods get 405.  SIGINT or SIGTERM
 * closes the server gracefully. */
#include <eddy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The backend must be chosen before the loop starts: EDDY_BACKEND. */
static int pick_backend(const char *name) {
  if (strcmp(name, "epoll") != 0 && strcmp(name, "io_uring") != 0) {
    fprintf(stderr, "eddy-hello: unknown backend '%s' (epoll, io_uring)\n",
            name);
    return -1;
  }
  if (!eddy_backend_available(name)) {
    fprintf(stderr, "eddy-hello: backend '%s' is not available here\n", name);
    return -1;
  }
  setenv("EDDY_BACKEND", name, 1);
  return 0;
}

static int parse_args(int argc, char **argv, int *port, const char **host) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--port") == 0 && v != NULL) {
      char *end;
      long p = strtol(v, &end, 10);
      if (*end != '\0' || p < 0 || p > 65535)
        return -1;
      *port = (int)p;
    } else if (strcmp(a, "--host") == 0 && v != NULL) {
      *host = v;
    } else if (strcmp(a, "--backend") == 0 && v != NULL) {
      if (pick_backend(v) != 0)
        exit(1);
    } else {
      return -1;
    }
    i++;
  }
  return *port >= 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  int port = -1;
  const char *host = "127.0.0.1";
  struct sockaddr_storage addr;
  if (parse_args(argc, argv, &port, &host) != 0) {
    usage(stderr);
    return 1;
  }
  if (eddy_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      eddy_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
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
