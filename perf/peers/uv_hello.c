/* The libuv + llhttp peer of eddy-hello for the HTTP benchmarks.
 *
 *   uv-hello --port N [--host 127.0.0.1]
 *
 * Answers every request with 200, Content-Type: text/plain and the body
 * "hello world", keeps connections alive and answers pipelined requests in
 * order.  Written the way a careful libuv server is written, so that eddy
 * is measured against libuv at its best, not against a strawman:
 *
 *  - one 64 KB read buffer for the whole loop: a read is parsed before the
 *    next one starts, so no connection needs its own;
 *  - llhttp (8.1, compiled in from Debian's node-llhttp) parses each read;
 *    every complete message appends the fixed response to one batch;
 *  - the batch goes out with one uv_try_write per read; only what the
 *    kernel does not take is copied to the connection and handed to
 *    uv_write, and later batches queue behind it, so answers stay in order;
 *  - the Date header is formatted once a second, as Node and nginx do.
 *
 * An idle connection costs its uv_tcp_t and llhttp_t (about 400 bytes). */
#include <errno.h>
#include <llhttp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#define READ_SIZE 65536
#define MAX_PENDING (4u << 20) /* stop reading above this much unsent */

/* The response, byte for byte eddy-hello's, with a fixed-width Date
 * (IMF-fixdate, 29 characters). */
#define RESPONSE_HEAD                                                          \
  "HTTP/1.1 200 OK\r\n"                                                        \
  "Content-Type: text/plain\r\n"                                               \
  "Date: "
#define RESPONSE_TAIL "\r\nContent-Length: 11\r\n\r\nhello world"
#define DATE_LEN 29

static const char bad_request[] = "HTTP/1.1 400 Bad Request\r\n"
                                  "Content-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";

static char response[sizeof RESPONSE_HEAD - 1 + DATE_LEN + sizeof RESPONSE_TAIL];
static size_t response_len;

typedef struct conn {
  uv_tcp_t tcp;
  llhttp_t parser;
  unsigned answers;   /* complete requests in the current read */
  unsigned last : 1;  /* the client asked to close: no more reads */
  unsigned closed : 1;
  unsigned reading : 1;
  uv_write_t req;     /* in flight when flight != NULL */
  char *flight;       /* bytes uv_write is sending */
  char *queued;       /* bytes that wait for the write in flight */
  size_t nqueued;
  size_t capqueued;
} conn_t;

static uv_loop_t *loop;
static llhttp_settings_t settings;
static char read_buf[READ_SIZE];
static char *batch;
static size_t batch_cap;

static void on_write(uv_write_t *req, int status);

static void set_date(void) {
  char date[DATE_LEN + 1];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  response_len = (size_t)snprintf(response, sizeof response, "%s%s%s",
                                  RESPONSE_HEAD, date, RESPONSE_TAIL);
}

static void on_date_timer(uv_timer_t *t) {
  (void)t;
  set_date();
}

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  free(c->flight);
  free(c->queued);
  free(c);
}

static void conn_close(conn_t *c) {
  if (c->closed)
    return;
  c->closed = 1;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static int on_message_complete(llhttp_t *p) {
  conn_t *c = p->data;
  c->answers++;
  if (!llhttp_should_keep_alive(p)) {
    c->last = 1;
    return HPE_PAUSED; /* ignore whatever follows */
  }
  return 0;
}

/* Hands c->queued to uv_write. */
static void start_write(conn_t *c) {
  uv_buf_t b = uv_buf_init(c->queued, (unsigned)c->nqueued);
  c->flight = c->queued;
  c->queued = NULL;
  c->nqueued = c->capqueued = 0;
  if (uv_write(&c->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
    free(c->flight);
    c->flight = NULL;
    conn_close(c);
  }
}

static int queue_bytes(conn_t *c, const char *p, size_t n) {
  if (c->nqueued + n > c->capqueued) {
    size_t cap = c->capqueued ? c->capqueued : 4096;
    while (cap < c->nqueued + n)
      cap *= 2;
    char *q = realloc(c->queued, cap);
    if (q == NULL)
      return -1;
    c->queued = q;
    c->capqueued = cap;
  }
  memcpy(c->queued + c->nqueued, p, n);
  c->nqueued += n;
  return 0;
}

/* Sends n bytes after everything sent before: directly if nothing waits,
 * else behind the write in flight. */
static void send_bytes(conn_t *c, const char *p, size_t n) {
  if (c->flight == NULL) {
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == (int)n)
      return;
    if (r < 0 && r != UV_EAGAIN) {
      conn_close(c);
      return;
    }
    if (r > 0) {
      p += r;
      n -= (size_t)r;
    }
  }
  if (queue_bytes(c, p, n) != 0) {
    conn_close(c);
    return;
  }
  if (c->flight == NULL)
    start_write(c);
  else if (c->nqueued > MAX_PENDING && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status) {
  conn_t *c = req->data;
  free(c->flight);
  c->flight = NULL;
  if (status < 0 || c->closed) {
    conn_close(c);
    return;
  }
  if (c->nqueued > 0) {
    start_write(c);
    return;
  }
  if (c->last) {
    conn_close(c);
    return;
  }
  if (!c->reading) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0)
    return;
  c->answers = 0;
  llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
  size_t need = (size_t)c->answers * response_len;
  if (need > batch_cap) {
    size_t cap = batch_cap ? batch_cap : 65536;
    while (cap < need)
      cap *= 2;
    char *b = realloc(batch, cap);
    if (b == NULL) {
      conn_close(c);
      return;
    }
    batch = b;
    batch_cap = cap;
  }
  for (unsigned i = 0; i < c->answers; i++)
    memcpy(batch + (size_t)i * response_len, response, response_len);
  if (need > 0)
    send_bytes(c, batch, need);
  if (c->closed)
    return;
  if (err != HPE_OK && !c->last) {
    send_bytes(c, bad_request, sizeof bad_request - 1);
    c->last = 1;
  }
  if (c->last) {
    if (c->reading) {
      uv_read_stop(s);
      c->reading = 0;
    }
    if (c->flight == NULL)
      conn_close(c);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0)
    return;
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->req.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)signum;
  uv_stop(sig->loop);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
      port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
      host = argv[++i];
    else {
      fprintf(stderr, "usage: %s --port N [--host 127.0.0.1]\n", argv[0]);
      return 2;
    }
  }
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "uv-hello: --port N is required\n");
    return 2;
  }

  /* Thousands of idle connections need as many descriptors. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);

  loop = uv_default_loop();
  llhttp_settings_init(&settings);
  settings.on_message_complete = on_message_complete;
  set_date();

  uv_timer_t date_timer;
  uv_timer_init(loop, &date_timer);
  uv_timer_start(&date_timer, on_date_timer, 1000, 1000);
  uv_unref((uv_handle_t *)&date_timer);

  uv_signal_t sigterm, sigint;
  uv_signal_init(loop, &sigterm);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_unref((uv_handle_t *)&sigterm);
  uv_unref((uv_handle_t *)&sigint);

  struct sockaddr_in addr;
  uv_tcp_t server;
  int r = uv_ip4_addr(host, port, &addr);
  if (r == 0)
    r = uv_tcp_init(loop, &server);
  if (r == 0)
    r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&server, 511, on_connection);
  if (r != 0) {
    fprintf(stderr, "uv-hello: %s:%d: %s\n", host, port, uv_strerror(r));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
