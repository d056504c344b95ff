/* The loop's responsiveness: one keep-alive connection asks GET /hello at a
 * steady pace (not as fast as it can, which would be a load of its own) and
 * records each answer's latency.
 *
 *   hello_probe PORT SECONDS [RATE_PER_S]
 *
 * Prints "n=N p50_us=.. p99_us=.. max_us=..". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Reads one response: headers, then Content-Length bytes. */
static int read_response(int fd) {
  char buf[4096];
  size_t len = 0;
  for (;;) {
    ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (n <= 0)
      return -1;
    len += (size_t)n;
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    char *cl = strcasestr(buf, "content-length:");
    if (end != NULL && cl != NULL &&
        len >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
      return 0;
    if (len == sizeof buf - 1)
      return -1;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: hello_probe PORT SECONDS [RATE]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  double secs = atof(argv[2]), rate = argc > 3 ? atof(argv[3]) : 200;
  size_t cap = (size_t)(secs * rate) + 16, n = 0;
  double *lat = malloc(cap * sizeof *lat);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("connect");
    return 1;
  }
  static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  double start = now_us(), next = start;
  while (n < cap && now_us() - start < secs * 1e6) {
    double t0 = now_us();
    if (send(fd, req, sizeof req - 1, 0) < 0 || read_response(fd) != 0) {
      fprintf(stderr, "hello_probe: connection failed\n");
      return 1;
    }
    lat[n++] = now_us() - t0;
    next += 1e6 / rate;
    double wait = next - now_us();
    if (wait > 0)
      usleep((useconds_t)wait);
  }
  qsort(lat, n, sizeof *lat, cmp);
  printf("n=%zu p50_us=%.0f p99_us=%.0f max_us=%.0f\n", n, lat[n / 2],
         lat[(size_t)(n * 0.99)], lat[n - 1]);
  return 0;
}
