/* Shared by tests/http*.c: a server in the test's loop, a client in a
 * thread (raw sockets, or curl run as a child process), a small HTTP
 * response reader, and a test application with a few routes.
 *
 * The loop runs in the test's thread; the client thread touches nothing of
 * eddy but eddy_async_send, which tells the loop it is done: the server is
 * then closed gracefully and the loop ends.  Every socket has a 5 s
 * timeout, so a broken server fails a test instead of hanging it. */
#ifndef EDDY_TEST_HTTP_HELPERS_H
#define EDDY_TEST_HTTP_HELPERS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

extern char **environ;

typedef struct http_fixture_s {
  eddy_loop_t loop;
  eddy_http_server_t srv;
  eddy_async_t done;
  pthread_t thread;
  void (*client)(struct http_fixture_s *fx);
  int port;
  int close_called; /* the test closed the server itself */
  int closed;       /* the server's close callback ran */
} http_fixture_t;

static inline void http_server_closed(eddy_http_server_t *srv) {
  ((http_fixture_t *)srv->data)->closed = 1;
}

/* Graceful close, once. */
static inline void http_close(http_fixture_t *fx) {
  if (fx->close_called)
    return;
  fx->close_called = 1;
  eddy_http_server_close(&fx->srv, http_server_closed);
}

static inline void http_client_done(eddy_async_t *a) {
  eddy_close(&a->handle, NULL);
  http_close(a->handle.data);
}

static inline void *http_client_main(void *arg) {
  http_fixture_t *fx = arg;
  fx->client(fx);
  eddy_async_send(&fx->done);
  return NULL;
}

/* A server on 127.0.0.1, any port, with opts (NULL: defaults). */
static inline void http_start(http_fixture_t *fx, const char *backend,
                              const eddy_http_server_options_t *opts,
                              eddy_http_request_cb cb) {
  struct sockaddr_in addr;
  struct sockaddr_storage ss;
  eddy_test_loop_init(&fx->loop, backend);
  cr_assert(eq(int, eddy_http_server_init(&fx->loop, &fx->srv, opts, cb), 0));
  fx->srv.data = fx;
  eddy_ip4_addr("127.0.0.1", 0, &addr);
  int err = eddy_http_server_listen(&fx->srv, (struct sockaddr *)&addr, 0);
  cr_assert(eq(int, err, 0), "listen: %s", eddy_err_name(err));
  cr_assert(eq(int, eddy_http_server_address(&fx->srv, 0, &ss), 0));
  fx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Runs client(fx) in a thread while the loop serves; returns when the
 * client is done, the server closed and the loop closed. */
static inline void http_run(http_fixture_t *fx,
                            void (*client)(http_fixture_t *fx)) {
  fx->client = client;
  cr_assert(
      eq(int, eddy_async_init(&fx->loop, &fx->done, http_client_done), 0));
  fx->done.handle.data = fx;
  cr_assert(
      eq(int, pthread_create(&fx->thread, NULL, http_client_main, fx), 0));
  eddy_run(&fx->loop, EDDY_RUN_DEFAULT);
  pthread_join(fx->thread, NULL);
  cr_assert(eq(int, fx->closed, 1), "the server's close callback never ran");
  int rc = eddy_loop_close(&fx->loop);
  cr_assert(eq(int, rc, 0), "eddy_loop_close: %s", eddy_err_name(rc));
}

/* ---- Raw sockets --------------------------------------------------------- */

/* Client threads do not assert (Criterion asserts belong to the test's
 * thread): they record, and the test checks after http_run.  A connected
 * socket, or -errno. */
static inline int tc_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {5, 0};
  struct sockaddr_in a;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  eddy_ip4_addr("127.0.0.1", port, &a);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

static inline void tc_send(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* the server may close early: the reader checks */
    p += n;
    len -= (size_t)n;
  }
}

static inline void tc_sends(int fd, const char *s) {
  tc_send(fd, s, strlen(s));
}

/* Reads until EOF, an error, a timeout or cap bytes.  *end is 1 for EOF,
 * -errno for an error (-EAGAIN: timeout), 0 when the buffer filled. */
static inline size_t tc_read_all(int fd, char *buf, size_t cap, int *end) {
  size_t len = 0;
  *end = 0;
  while (len < cap) {
    ssize_t n = recv(fd, buf + len, cap - len, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      *end = n == 0 ? 1 : -errno;
      break;
    }
    len += (size_t)n;
  }
  return len;
}

static inline uint64_t tc_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- Responses ----------------------------------------------------------- */

typedef struct {
  int status;
  const char *head; /* status line and headers */
  size_t head_len;
  char body[1 << 16]; /* decoded */
  size_t body_len;
} tc_resp_t;

/* The value of a header of r, or NULL; copied into out. */
static inline const char *tc_header(const tc_resp_t *r, const char *name,
                                    char *out, size_t cap) {
  size_t n = strlen(name);
  for (const char *p = r->head; p < r->head + r->head_len;) {
    const char *eol = memchr(p, '\n', (size_t)(r->head + r->head_len - p));
    if (eol == NULL)
      break;
    if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1;
      while (*v == ' ')
        v++;
      size_t vl = (size_t)(eol - v) - (eol[-1] == '\r');
      if (vl >= cap)
        vl = cap - 1;
      memcpy(out, v, vl);
      out[vl] = '\0';
      return out;
    }
    p = eol + 1;
  }
  return NULL;
}

static inline size_t tc_chunked(const char *p, size_t len, tc_resp_t *r) {
  size_t off = 0;
  for (;;) {
    const char *eol = memmem(p + off, len - off, "\r\n", 2);
    if (eol == NULL)
      return 0;
    size_t size = strtoul(p + off, NULL, 16);
    off = (size_t)(eol - p) + 2;
    if (size == 0)
      return off + 2 <= len ? off + 2 : 0; /* no trailers */
    if (off + size + 2 > len)
      return 0;
    if (r->body_len + size <= sizeof r->body)
      memcpy(r->body + r->body_len, p + off, size);
    r->body_len += size;
    off += size + 2;
  }
}

/* Parses one response from buf: its length, or 0 if incomplete.  head_req
 * says the request was HEAD (no body whatever the headers say); a body
 * without a length runs to the end of buf (the connection's close). */
static inline size_t tc_parse(const char *buf, size_t len, tc_resp_t *r,
                              int head_req) {
  char v[64];
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  memset(r, 0, offsetof(tc_resp_t, body));
  r->body_len = 0;
  if (end == NULL || len < 12)
    return 0;
  r->status = atoi(buf + 9);
  r->head = buf;
  r->head_len = (size_t)(end - buf) + 2;
  size_t off = r->head_len + 2;
  if (head_req || r->status == 204 || r->status == 304 || r->status < 200)
    return off;
  if (tc_header(r, "Transfer-Encoding", v, sizeof v) != NULL) {
    size_t n = tc_chunked(buf + off, len - off, r);
    return n == 0 ? 0 : off + n;
  }
  size_t cl = len - off;
  if (tc_header(r, "Content-Length", v, sizeof v) != NULL)
    cl = strtoul(v, NULL, 10);
  if (off + cl > len)
    return 0;
  memcpy(r->body, buf + off, cl < sizeof r->body ? cl : sizeof r->body);
  r->body_len = cl;
  return off + cl;
}

/* What a client thread saw, for the test to check. */
typedef struct {
  char buf[1 << 20];
  size_t len;
  size_t parsed; /* responses before this were counted by tc_read_n */
  int end;       /* tc_read_all's: 1 EOF, -errno, 0 full */
  uint64_t ms;   /* from the request to the end */
} tc_log_t;

/* Reads into log until n more responses are complete (or the end). */
static inline int tc_read_n(int fd, tc_log_t *log, int n, int head_req) {
  static tc_resp_t r;
  size_t off = log->parsed;
  int got = 0;
  for (;;) {
    size_t used;
    while (got < n && (used = tc_parse(log->buf + off, log->len - off, &r,
                                       head_req)) != 0) {
      off += used;
      got++;
    }
    log->parsed = off;
    if (got == n || log->len == sizeof log->buf)
      return got;
    ssize_t k = recv(fd, log->buf + log->len, sizeof log->buf - log->len, 0);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      log->end = k == 0 ? 1 : -errno;
      return got;
    }
    log->len += (size_t)k;
  }
}

/* Connects, sends req, reads until the server closes (or 5 s pass). */
static inline void tc_talk(int port, const void *req, size_t len,
                           tc_log_t *log) {
  uint64_t t0 = tc_ms();
  int fd = tc_connect(port);
  log->len = 0;
  if (fd < 0) {
    log->end = fd;
    return;
  }
  tc_send(fd, req, len);
  log->len = tc_read_all(fd, log->buf, sizeof log->buf, &log->end);
  log->ms = tc_ms() - t0;
  close(fd);
}

/* The log holds exactly one response with this status, then EOF. */
static inline void tc_expect_status_then_eof(const tc_log_t *log, int status) {
  static tc_resp_t r;
  size_t n = tc_parse(log->buf, log->len, &r, 0);
  cr_assert(gt(sz, n, (size_t)0), "no complete response in %zu bytes: %.*s",
            log->len, (int)(log->len < 200 ? log->len : 200), log->buf);
  cr_assert(eq(int, r.status, status), "got: %.*s", (int)r.head_len, r.head);
  cr_assert(eq(int, log->end, 1), "the connection did not end with EOF (%d)",
            log->end);
  cr_assert(eq(sz, n, log->len), "bytes after the response");
}

/* ---- curl ---------------------------------------------------------------- */

/* Runs argv (a NULL-terminated list) with stdout and stderr into out;
 * returns the exit status, or -1. */
static inline int tc_run(char *const argv[], char *out, size_t cap,
                         size_t *out_len) {
  int pipefd[2];
  pid_t pid;
  posix_spawn_file_actions_t fa;
  if (pipe(pipefd) != 0)
    return -1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  size_t len = 0;
  if (err != 0) {
    close(pipefd[0]);
    snprintf(out, cap, "spawn %s: %s", argv[0], strerror(err));
    return -1;
  }
  for (;;) {
    ssize_t n = read(pipefd[0], out + len, cap - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
    if (len == cap - 1)
      break;
  }
  out[len] = '\0';
  close(pipefd[0]);
  int status;
  waitpid(pid, &status, 0);
  if (out_len != NULL)
    *out_len = len;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- A test application -------------------------------------------------- */

/* FNV-1a, to compare bodies end to end without keeping them. */
static inline uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

/* The byte at offset i of the test bodies. */
static inline char body_byte(size_t i) {
  return (char)(i * 131 + i / 977);
}

static inline int path_is(const eddy_http_req_t *req, const char *p) {
  return req->path.len == strlen(p) &&
         memcmp(req->path.base, p, req->path.len) == 0;
}

#endif
