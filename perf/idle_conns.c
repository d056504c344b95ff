/* Resident memory per idle keep-alive connection of an HTTP server.
 *
 *   idle-conns --pid PID[,PID...] [--host 127.0.0.1] --port N [--conns 5000]
 *              [--window 128] [--settle-ms 500]
 *
 * Warms the server up (a few connections, one request each, closed), reads
 * VmRSS of the server's processes, then opens CONNS connections, at most
 * WINDOW of them connecting at once; each sends one GET and reads the whole
 * response (headers and Content-Length body), then stays open and idle.
 * Once all are idle it waits SETTLE-MS, reads VmRSS again, checks how many
 * connections the server still holds open, and prints one line:
 *
 *   IDLE conns=5000 open=5000 rss_before_kb=.. rss_after_kb=.. bytes_per_conn=..
 *
 * bytes_per_conn = (after - before) * 1024 / conns.  Exits 1 if a
 * connection failed or the server closed any before the second reading. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define WARMUP 16
#define TIMEOUT_MS 30000

static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

typedef struct {
  int fd;
  int state; /* 0 connecting, 1 reading, 2 idle */
  size_t got;
  char buf[1024];
} conn_t;

static long pids[16];
static int npids;

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long rss_kb(void) {
  long total = 0;
  for (int i = 0; i < npids; i++) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pids[i]);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
      fprintf(stderr, "idle-conns: %s: %s\n", path, strerror(errno));
      exit(1);
    }
    while (fgets(line, sizeof line, f))
      if (strncmp(line, "VmRSS:", 6) == 0)
        total += atol(line + 6);
    fclose(f);
  }
  return total;
}

/* A complete response: headers, then Content-Length bytes of body. */
static int response_done(const char *b, size_t n) {
  const char *end = memmem(b, n, "\r\n\r\n", 4);
  if (end == NULL)
    return 0;
  size_t head = (size_t)(end - b) + 4;
  long len = 0;
  for (const char *p = b; p < end; p++) {
    if ((*p == '\n') && strncasecmp(p + 1, "content-length:", 15) == 0) {
      len = atol(p + 16);
      break;
    }
  }
  if (strncmp(b, "HTTP/1.1 200", 12) != 0) {
    fprintf(stderr, "idle-conns: unexpected response: %.*s\n", (int)head, b);
    exit(1);
  }
  return n >= head + (size_t)len;
}

static int open_conn(struct sockaddr_in *sa) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fprintf(stderr, "idle-conns: socket: %s\n", strerror(errno));
    exit(1);
  }
  if (connect(fd, (struct sockaddr *)sa, sizeof *sa) != 0 &&
      errno != EINPROGRESS) {
    fprintf(stderr, "idle-conns: connect: %s\n", strerror(errno));
    exit(1);
  }
  return fd;
}

/* Drives conns[0..n) to idle, at most window connecting or reading at once. */
static void make_idle(conn_t *conns, int n, int window,
                      struct sockaddr_in *sa) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int started = 0, active = 0, idle = 0;
  long deadline = now_ms() + TIMEOUT_MS;
  struct epoll_event evs[256];
  while (idle < n) {
    while (active < window && started < n) {
      conn_t *c = &conns[started];
      c->fd = open_conn(sa);
      c->state = 0;
      c->got = 0;
      struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)started};
      epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      started++;
      active++;
    }
    int k = epoll_wait(ep, evs, 256, 1000);
    if (now_ms() > deadline) {
      fprintf(stderr, "idle-conns: timed out with %d of %d idle\n", idle, n);
      exit(1);
    }
    for (int i = 0; i < k; i++) {
      conn_t *c = &conns[evs[i].data.u32];
      if (c->state == 0) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          fprintf(stderr, "idle-conns: connect: %s\n", strerror(err));
          exit(1);
        }
        if (write(c->fd, request, sizeof request - 1) !=
            (ssize_t)(sizeof request - 1)) {
          fprintf(stderr, "idle-conns: write: %s\n", strerror(errno));
          exit(1);
        }
        c->state = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data = evs[i].data};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      } else if (c->state == 1) {
        ssize_t r = read(c->fd, c->buf + c->got, sizeof c->buf - 1 - c->got);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          fprintf(stderr, "idle-conns: server closed a connection before "
                          "answering\n");
          exit(1);
        }
        if (r > 0)
          c->got += (size_t)r;
        if (response_done(c->buf, c->got)) {
          c->state = 2;
          epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
          active--;
          idle++;
        }
      }
    }
  }
  close(ep);
}

/* Connections the server has not closed (no EOF, no reset, no data). */
static int still_open(conn_t *conns, int n) {
  struct pollfd *p = calloc((size_t)n, sizeof *p);
  for (int i = 0; i < n; i++) {
    p[i].fd = conns[i].fd;
    p[i].events = POLLIN | POLLRDHUP;
  }
  poll(p, (nfds_t)n, 0);
  int open = 0;
  for (int i = 0; i < n; i++)
    open += p[i].revents == 0;
  free(p);
  return open;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0, n = 5000, window = 128, settle = 500;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL)
      goto usage;
    if (strcmp(a, "--pid") == 0) {
      for (char *s = argv[++i]; *s && npids < 16;) {
        pids[npids++] = strtol(s, &s, 10);
        if (*s == ',')
          s++;
      }
    } else if (strcmp(a, "--host") == 0)
      host = argv[++i];
    else if (strcmp(a, "--port") == 0)
      port = atoi(argv[++i]);
    else if (strcmp(a, "--conns") == 0)
      n = atoi(argv[++i]);
    else if (strcmp(a, "--window") == 0)
      window = atoi(argv[++i]);
    else if (strcmp(a, "--settle-ms") == 0)
      settle = atoi(argv[++i]);
    else
      goto usage;
  }
  if (npids == 0 || port <= 0 || n <= 0 || window <= 0)
    goto usage;

  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < (rlim_t)n + 64) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)n + 64) {
      fprintf(stderr, "idle-conns: RLIMIT_NOFILE %lu is below %d\n",
              (unsigned long)rl.rlim_cur, n + 64);
      return 1;
    }
  }

  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "idle-conns: bad host %s\n", host);
    return 1;
  }

  conn_t *conns = calloc((size_t)n, sizeof *conns);
  conn_t warm[WARMUP];
  make_idle(warm, WARMUP, WARMUP, &sa);
  for (int i = 0; i < WARMUP; i++)
    close(warm[i].fd);
  usleep(200 * 1000);

  long before = rss_kb();
  long t0 = now_ms();
  make_idle(conns, n, window, &sa);
  long t1 = now_ms();
  usleep((useconds_t)settle * 1000);
  long after = rss_kb();
  int open = still_open(conns, n);
  printf("IDLE conns=%d open=%d rss_before_kb=%ld rss_after_kb=%ld "
         "bytes_per_conn=%.0f setup_ms=%ld\n",
         n, open, before, after, (double)(after - before) * 1024.0 / n,
         t1 - t0);
  for (int i = 0; i < n; i++)
    close(conns[i].fd);
  free(conns);
  return open == n ? 0 : 1;

usage:
  fprintf(stderr, "usage: %s --pid PID[,PID] [--host H] --port N "
                  "[--conns 5000] [--window 128] [--settle-ms 500]\n",
          argv[0]);
  return 2;
}
