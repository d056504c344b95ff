/* eddy-echo: a TCP echo server.  Each read is written back from the same
 * loop buffer, retained until the write completes (no copy). */
#include "app.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct echo_write_s {
  eddy_write_t req;
  eddy_slice_t slice;
  struct echo_write_s *next_free;
} echo_write_t;

static eddy_loop_t loop;
static eddy_tcp_t server;
static eddy_signal_t sigint, sigterm;
static echo_write_t *free_writes; /* reused, so echoing does not malloc */

static echo_write_t *write_get(void) {
  echo_write_t *w = free_writes;
  if (w != NULL) {
    free_writes = w->next_free;
    return w;
  }
  return malloc(sizeof *w);
}

static void write_put(echo_write_t *w) {
  w->next_free = free_writes;
  free_writes = w;
}

static void on_conn_closed(eddy_handle_t *h) {
  free(h);
}

static void on_written(eddy_write_t *req, int status) {
  echo_write_t *w = (echo_write_t *)req;
  eddy_slice_release(&w->slice);
  write_put(w);
}

static void on_read(eddy_stream_t *s, ssize_t nread, const eddy_slice_t *buf) {
  if (nread < 0) {
    if (!eddy_is_closing(&s->handle))
      eddy_close(&s->handle, on_conn_closed);
    return;
  }
  echo_write_t *w = write_get();
  if (w == NULL) {
    eddy_close(&s->handle, on_conn_closed);
    return;
  }
  w->slice = *buf;
  eddy_slice_retain(&w->slice);
  eddy_buf_t b = eddy_buf_init(w->slice.base, (size_t)nread);
  int r = eddy_write(&w->req, s, &b, 1, on_written);
  if (r < 0) {
    eddy_slice_release(&w->slice);
    write_put(w);
    eddy_close(&s->handle, on_conn_closed);
  } else if (r == EDDY_STREAM_FULL) {
    eddy_read_stop(s); /* a client that does not read: stop reading it */
  }
}

static void on_drain(eddy_stream_t *s) {
  eddy_read_start(s, on_read);
}

static void on_connection(eddy_stream_t *srv, int status) {
  if (status != 0) {
    fprintf(stderr, "eddy-echo: accept: %s\n", eddy_strerror(status));
    return;
  }
  eddy_tcp_t *c = malloc(sizeof *c);
  if (c == NULL || eddy_tcp_init(&loop, c) != 0) {
    free(c);
    return;
  }
  if (eddy_accept(srv, &c->stream) != 0) {
    eddy_close(&c->stream.handle, on_conn_closed);
    return;
  }
  eddy_tcp_nodelay(c, 1);
  eddy_stream_set_drain_cb(&c->stream, on_drain);
  eddy_read_start(&c->stream, on_read);
}

static void on_signal(eddy_signal_t *s, int signum) {
  eddy_close(&server.stream.handle, NULL);
  eddy_close(&sigint.handle, NULL);
  eddy_close(&sigterm.handle, NULL);
  eddy_stop(&loop);
}

static void usage(FILE *out) {
  fprintf(out, "usage: eddy-echo --port N [--host ADDR] "
               "[--backend epoll|io_uring]\n\n"
               "A TCP echo server on eddy: every byte read is written back.\n");
}

int main(int argc, char **argv) {
  app_args_t a = {"eddy-echo", usage, -1, "127.0.0.1"};
  for (int i = 1; i < argc; i++) {
    if (app_option(&a, argc, argv, &i) <= 0) { /* no options of its own */
      usage(stderr);
      return 2;
    }
  }
  struct sockaddr_storage addr;
  int v6;
  if (a.port < 0) {
    usage(stderr);
    return 2;
  }
  if (app_addr(a.host, a.port, &addr, &v6) != 0) {
    fprintf(stderr, "eddy-echo: bad address %s\n", a.host);
    return 2;
  }
  int err = eddy_loop_init(&loop);
  if (err == 0)
    err = eddy_tcp_init(&loop, &server);
  if (err == 0)
    err = eddy_tcp_bind(&server, (struct sockaddr *)&addr, 0);
  if (err == 0)
    err = eddy_listen(&server.stream, 1024, on_connection);
  if (err != 0) {
    fprintf(stderr, "eddy-echo: %s:%d: %s\n", a.host, a.port,
            eddy_strerror(err));
    return 1;
  }
  eddy_signal_init(&loop, &sigint);
  eddy_signal_start(&sigint, on_signal, SIGINT);
  eddy_signal_init(&loop, &sigterm);
  eddy_signal_start(&sigterm, on_signal, SIGTERM);
  printf("eddy-echo listening on %s:%d (%s)\n", a.host, a.port,
         eddy_backend_name(&loop));
  fflush(stdout);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  return 0;
}
