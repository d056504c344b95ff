/* eddy-static: a static file server.
 *
 *   eddy-static --root DIR [--port N] [--host ADDR] [--prefix /P/]
 *               [--backend epoll|io_uring]
 *
 * Serves DIR under the prefix (default "/") on 127.0.0.1 (or --host),
 * port 8080 unless --port says otherwise (0: any free port; the address is
 * printed).  include/eddy/http_static.h tells what it answers; SIGINT or
 * SIGTERM stops it gracefully. */
#include "app.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static eddy_loop_t loop;
static eddy_http_server_t server;
static eddy_http_static_t *files;
static eddy_signal_t sigint, sigterm;

static void on_request(eddy_http_req_t *req, eddy_http_res_t *res) {
  if (eddy_http_static_serve(files, req, res))
    return;
  eddy_http_set_status(res, 404);
  eddy_http_set_header(res, "Content-Type", "text/plain");
  eddy_http_end(res, "not found\n", 10);
}

static void on_signal(eddy_signal_t *s, int signum) {
  eddy_http_server_close(&server, NULL);
  eddy_close(&sigint.handle, NULL);
  eddy_close(&sigterm.handle, NULL);
}

static void usage(FILE *out) {
  fprintf(out, "usage: eddy-static --root DIR [--port N] [--host ADDR] "
               "[--prefix /P/] [--backend epoll|io_uring]\n"
               "Serves the files of DIR over HTTP (GET, HEAD, ranges, "
               "conditional requests, sendfile).\n"
               "Port 8080 unless --port (0: any free port); address "
               "127.0.0.1 unless --host.\n");
}

int main(int argc, char **argv) {
  eddy_http_static_options_t so;
  eddy_http_static_options_init(&so);
  app_args_t a = {"eddy-static", usage, 8080, "127.0.0.1"};
  for (int i = 1; i < argc; i++) {
    int r = app_option(&a, argc, argv, &i);
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (r > 0)
      continue;
    if (r == 0 && v != NULL && strcmp(argv[i], "--root") == 0)
      so.root = v;
    else if (r == 0 && v != NULL && strcmp(argv[i], "--prefix") == 0)
      so.prefix = v;
    else {
      usage(stderr);
      return 1;
    }
    i++;
  }
  if (so.root == NULL || a.port < 0) {
    usage(stderr);
    return 1;
  }
  const char *host = a.host;
  int port = a.port;
  struct sockaddr_storage ss;
  int v6;
  int err = eddy_loop_init(&loop);
  if (err == 0)
    err = eddy_http_static_init(&loop, &files, &so);
  if (err == 0)
    err = eddy_http_server_init(&loop, &server, NULL, on_request);
  if (err == 0)
    err = app_addr(host, port, &ss, &v6);
  if (err == 0)
    err = eddy_http_server_listen(&server, (struct sockaddr *)&ss, 0);
  if (err != 0) {
    fprintf(stderr, "eddy-static: %s\n", eddy_strerror(err));
    return 1;
  }
  char name[64];
  eddy_http_server_address(&server, 0, &ss);
  eddy_addr_name((struct sockaddr *)&ss, name, sizeof name);
  printf("eddy-static serving %s on http://%s%s (%s)\n", so.root, name,
         so.prefix, eddy_backend_name(&loop));
  fflush(stdout);
  eddy_signal_init(&loop, &sigint);
  eddy_signal_init(&loop, &sigterm);
  eddy_signal_start(&sigint, on_signal, SIGINT);
  eddy_signal_start(&sigterm, on_signal, SIGTERM);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  eddy_http_static_close(files);
  return eddy_loop_close(&loop) == 0 ? 0 : 1;
}
