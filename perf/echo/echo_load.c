/* echo_load: a closed-loop load generator for TCP echo servers.
 *
 *   echo_load [-c conns] [-s size] [-d seconds] [-w warmup] [-p port]
 *             [-h host] [-m uring|epoll] [-b] [-P server_pid]
 *             [-t tracepoints]
 *
 * Opens `conns` connections to host:port.  Each connection sends a message
 * of `size` bytes, waits until all `size` bytes have come back, checks them
 * byte for byte, then sends the next one: one message in flight per
 * connection.  After `warmup` seconds it measures for `seconds` seconds and
 * prints one line:
 *
 *   ECHO conns=N size=S secs=D msgs=M msgs_per_s=X min_conn=A max_conn=B
 *        client_cpu_s=C client_sleeps=Z [server_cpu_s=U server_run_s=R
 *        server_sleeps=Y] [sys_<tracepoint>=K ...] errors=0 mode=M
 *
 * min_conn/max_conn: fewest and most messages one connection completed in
 * the window (a stalled connection shows as min_conn=0).
 *
 * With -P PID it also reads the server's CPU time at both ends of the
 * window: server_cpu_s from /proc/PID/stat (utime + stime of every thread,
 * clock ticks) and server_run_s from /proc/PID/task/ * /schedstat
 * (nanoseconds on CPU), and server_sleeps, the voluntary context
 * switches of its threads (client_sleeps: the generator's own).  With -t
 * it counts the server's syscalls in the window with the named
 * tracepoints ("raw_syscalls:sys_enter" counts them all,
 * "syscalls:sys_enter_read" one kind), opened with perf_event_open on
 * every thread of PID: what `perf stat -e TP -p PID` counts, read exactly
 * at the window's ends.
 *
 * Every message is a different slice of a fixed pattern (its offset
 * depends on the connection and the message number), so a byte echoed to
 * the wrong connection, twice, or out of order fails the check.  Exit
 * status: 0 if every byte matched and nothing failed, 1 otherwise.
 *
 * The default mode (uring) keeps the generator cheap: one io_uring_enter
 * per batch submits every send and receive and reaps every completion
 * (DEFER_TASKRUN, no SQPOLL).  -m epoll uses level-triggered epoll with
 * read and write, for kernels without io_uring.  Single-threaded either
 * way.  -b busy-polls (io_uring_enter or epoll_wait that never block): the
 * generator keeps its CPU at 100% but never sleeps, so the server's sends
 * never have to wake it, a cost that loopback charges to the server (a
 * sleeping generator can halve the server's msg/CPU-s, and whether it
 * sleeps flips from run to run). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_MOD 251 /* prime: message offsets cycle through all of it */
#define MAX_TP 8
#define MAX_THREADS 256

typedef struct {
  int fd;
  unsigned id;
  uint64_t seq;   /* message number */
  size_t got;     /* bytes of the current echo received */
  size_t sent;    /* bytes of the current message sent */
  uint64_t done;  /* messages completed */
  uint64_t mark;  /* done at the window's start */
  char *rbuf;     /* uring mode: receive buffer of `size` bytes */
} conn_t;

static size_t msg_size = 64;
static unsigned nconns = 64;
static double duration = 4, warmup = 1;
static const char *host = "127.0.0.1";
static int port = -1;
static int server_pid = -1;
static int busy_poll; /* -b: never sleep waiting for echoes */
static char *pattern;
static conn_t *conns;
static uint64_t total_done, errors, mismatches;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *msg_of(conn_t *c) {
  return pattern + (c->id * 7 + c->seq * 13) % PATTERN_MOD;
}

/* n bytes of the echo arrived in buf: check them against the message. */
static int check(conn_t *c, const char *buf, size_t n) {
  if (c->got + n > msg_size || memcmp(buf, msg_of(c) + c->got, n) != 0) {
    if (mismatches++ == 0)
      fprintf(stderr, "echo_load: conn %u message %llu: echo differs\n",
              c->id, (unsigned long long)c->seq);
    return -1;
  }
  c->got += n;
  return 0;
}

static void next_message(conn_t *c) {
  c->done++;
  total_done++;
  c->seq++;
  c->got = 0;
  c->sent = 0;
}

/* ---- Server CPU time and syscall counters ---------------------------------- */

static double clk_tck;

/* utime + stime of the whole process, in seconds (/proc/PID/stat). */
static double server_cpu(void) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", server_pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (p == NULL)
    return -1;
  unsigned long long ut = 0, st = 0;
  /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (ut + st) / clk_tck;
}

/* Voluntary context switches (sleeps) of every thread of the process. */
static uint64_t server_sleeps(void) {
  char path[320], line[128];
  snprintf(path, sizeof path, "/proc/%d/task", server_pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return 0;
  uint64_t total = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", server_pid,
             e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    unsigned long long n;
    while (fgets(line, sizeof line, f) != NULL)
      if (sscanf(line, "voluntary_ctxt_switches: %llu", &n) == 1)
        total += n;
    fclose(f);
  }
  closedir(d);
  return total;
}

/* Time on CPU of every thread of the process, in seconds (schedstat). */
static double server_run(void) {
  char path[320];
  snprintf(path, sizeof path, "/proc/%d/task", server_pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return -1;
  double total = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", server_pid,
             e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    unsigned long long ns = 0;
    if (fscanf(f, "%llu", &ns) == 1)
      total += ns / 1e9;
    fclose(f);
  }
  closedir(d);
  return total;
}

static uint64_t client_sleeps(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)ru.ru_nvcsw;
}

static double client_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static struct {
  char name[96];
  int fds[MAX_THREADS];
  int nfds;
} tps[MAX_TP];
static int ntp;

static int tracepoint_id(const char *tp) {
  char sys[64], ev[96], path[256];
  const char *colon = strchr(tp, ':');
  if (colon == NULL || (size_t)(colon - tp) >= sizeof sys ||
      strlen(colon + 1) >= sizeof ev)
    return -1;
  memcpy(sys, tp, (size_t)(colon - tp));
  sys[colon - tp] = 0;
  strcpy(ev, colon + 1);
  const char *roots[] = {"/sys/kernel/tracing/events",
                         "/sys/kernel/debug/tracing/events"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s/%s/id", roots[i], sys, ev);
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    int id = -1;
    if (fscanf(f, "%d", &id) != 1)
      id = -1;
    fclose(f);
    return id;
  }
  return -1;
}

/* Opens each tracepoint of the comma-separated list on every thread of
 * the server. */
static int open_tracepoints(char *list) {
  char path[64];
  for (char *tp = strtok(list, ","); tp != NULL; tp = strtok(NULL, ",")) {
    if (ntp == MAX_TP)
      return -1;
    int id = tracepoint_id(tp);
    if (id < 0) {
      fprintf(stderr, "echo_load: tracepoint %s not found\n", tp);
      return -1;
    }
    snprintf(tps[ntp].name, sizeof tps[ntp].name, "%s", tp);
    snprintf(path, sizeof path, "/proc/%d/task", server_pid);
    DIR *d = opendir(path);
    if (d == NULL)
      return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.' || tps[ntp].nfds == MAX_THREADS)
        continue;
      struct perf_event_attr a;
      memset(&a, 0, sizeof a);
      a.size = sizeof a;
      a.type = PERF_TYPE_TRACEPOINT;
      a.config = (unsigned)id;
      a.inherit = 1;
      int fd = (int)syscall(SYS_perf_event_open, &a, atoi(e->d_name), -1, -1,
                            PERF_FLAG_FD_CLOEXEC);
      if (fd < 0) {
        fprintf(stderr, "echo_load: perf_event_open %s: %s\n", tp,
                strerror(errno));
        closedir(d);
        return -1;
      }
      tps[ntp].fds[tps[ntp].nfds++] = fd;
    }
    closedir(d);
    ntp++;
  }
  return 0;
}

static void read_tracepoints(uint64_t *out) {
  for (int i = 0; i < ntp; i++) {
    out[i] = 0;
    for (int j = 0; j < tps[i].nfds; j++) {
      uint64_t v = 0;
      if (read(tps[i].fds[j], &v, sizeof v) == sizeof v)
        out[i] += v;
    }
  }
}

/* ---- The window ------------------------------------------------------------- */

static struct {
  double t, scpu, srun, ccpu;
  uint64_t done, ssleep, csleep;
  uint64_t tp[MAX_TP];
} w0, w1;

static int phase; /* 0 warm-up, 1 measuring, 2 done */
static double t_start, t_last_progress;
static uint64_t last_done;

static void snapshot(typeof(w0) *w) {
  w->t = now();
  w->done = total_done;
  w->ccpu = client_cpu();
  w->csleep = client_sleeps();
  if (server_pid > 0) {
    w->scpu = server_cpu();
    w->srun = server_run();
    w->ssleep = server_sleeps();
  }
  read_tracepoints(w->tp);
}

/* Called after every batch: moves between phases, spots a stall. */
static int tick(void) {
  double t = now();
  if (total_done != last_done) {
    last_done = total_done;
    t_last_progress = t;
  } else if (t - t_last_progress > 5) {
    fprintf(stderr, "echo_load: no echo for 5 s: the server stalled\n");
    errors++;
    return -1;
  }
  if (phase == 0 && t - t_start >= warmup) {
    for (unsigned i = 0; i < nconns; i++)
      conns[i].mark = conns[i].done;
    snapshot(&w0);
    phase = 1;
  } else if (phase == 1 && t - w0.t >= duration) {
    snapshot(&w1);
    phase = 2;
    return 1;
  }
  return 0;
}

/* ---- Connecting --------------------------------------------------------------- */

static int connect_all(void) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "echo_load: bad address %s\n", host);
    return -1;
  }
  for (unsigned i = 0; i < nconns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fprintf(stderr, "echo_load: socket: %s (ulimit -n?)\n", strerror(errno));
      return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r;
    for (int tries = 0;; tries++) {
      r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
      if (r == 0 || errno != ECONNREFUSED || tries == 50)
        break;
      usleep(100000); /* the server may still be starting */
    }
    if (r != 0) {
      fprintf(stderr, "echo_load: connect %s:%d: %s\n", host, port,
              strerror(errno));
      return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    conns[i].fd = fd;
    conns[i].id = i;
  }
  return 0;
}

/* ---- io_uring mode ------------------------------------------------------------ */

enum { OP_SEND = 0, OP_RECV = 1 };

static void u_send(struct io_uring *ring, conn_t *c) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
  if (sqe == NULL) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  io_uring_prep_send(sqe, c->fd, msg_of(c) + c->sent, msg_size - c->sent,
                     MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, (uint64_t)c->id << 1 | OP_SEND);
}

static void u_recv(struct io_uring *ring, conn_t *c) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
  if (sqe == NULL) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  io_uring_prep_recv(sqe, c->fd, c->rbuf + c->got, msg_size - c->got, 0);
  io_uring_sqe_set_data64(sqe, (uint64_t)c->id << 1 | OP_RECV);
}

static int run_uring(void) {
  struct io_uring ring;
  struct io_uring_params p;
  unsigned entries = 64;
  while (entries < 2 * nconns)
    entries *= 2;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
            IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 4;
  int err = io_uring_queue_init_params(entries, &ring, &p);
  if (err == -EINVAL) {
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 4;
    err = io_uring_queue_init_params(entries, &ring, &p);
  }
  if (err != 0) {
    fprintf(stderr, "echo_load: io_uring: %s (try -m epoll)\n",
            strerror(-err));
    return -1;
  }
  char *bufs = malloc((size_t)nconns * msg_size);
  if (bufs == NULL)
    return -1;
  for (unsigned i = 0; i < nconns; i++) {
    conns[i].rbuf = bufs + (size_t)i * msg_size;
    u_recv(&ring, &conns[i]);
    u_send(&ring, &conns[i]);
  }
  struct io_uring_cqe *cqes[512];
  struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100000000};
  for (;;) {
    struct io_uring_cqe *cqe;
    if (busy_poll)
      err = io_uring_submit_and_get_events(&ring);
    else
      err = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
    if (err < 0 && err != -ETIME && err != -EINTR) {
      fprintf(stderr, "echo_load: io_uring_enter: %s\n", strerror(-err));
      errors++;
      break;
    }
    unsigned n;
    while ((n = io_uring_peek_batch_cqe(&ring, cqes, 512)) > 0) {
      for (unsigned i = 0; i < n; i++) {
        uint64_t d = cqes[i]->user_data;
        int res = cqes[i]->res;
        conn_t *c = &conns[d >> 1];
        if (res <= 0) {
          if (errors++ == 0)
            fprintf(stderr, "echo_load: conn %u %s: %s\n", c->id,
                    (d & 1) ? "recv" : "send",
                    res == 0 ? "closed by the server" : strerror(-res));
          continue;
        }
        if ((d & 1) == OP_SEND) {
          c->sent += (size_t)res;
          if (c->sent < msg_size)
            u_send(&ring, c); /* short send: the rest */
          continue;
        }
        if (check(c, c->rbuf + c->got, (size_t)res) != 0)
          continue; /* this connection stops; the others go on */
        if (c->got == msg_size) {
          /* The whole echo came back, so the whole message had left. */
          next_message(c);
          u_recv(&ring, c);
          u_send(&ring, c);
        } else {
          u_recv(&ring, c);
        }
      }
      io_uring_cq_advance(&ring, n);
    }
    if (errors || mismatches)
      break;
    if (tick() != 0)
      break;
  }
  io_uring_queue_exit(&ring);
  return 0;
}

/* ---- epoll mode ----------------------------------------------------------------- */

static int e_send(int ep, conn_t *c) {
  while (c->sent < msg_size) {
    ssize_t n = send(c->fd, msg_of(c) + c->sent, msg_size - c->sent,
                     MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                                 .data.u32 = c->id};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
      }
      if (errors++ == 0)
        fprintf(stderr, "echo_load: conn %u send: %s\n", c->id,
                strerror(errno));
      return -1;
    }
    c->sent += (size_t)n;
  }
  return 0;
}

static int run_epoll(void) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    return -1;
  for (unsigned i = 0; i < nconns; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0)
      return -1;
    if (e_send(ep, &conns[i]) != 0)
      return -1;
  }
  struct epoll_event evs[1024];
  char *buf = malloc(msg_size);
  if (buf == NULL)
    return -1;
  for (;;) {
    int n = epoll_wait(ep, evs, 1024, busy_poll ? 0 : 100);
    if (n < 0 && errno != EINTR) {
      errors++;
      break;
    }
    for (int i = 0; i < n; i++) {
      conn_t *c = &conns[evs[i].data.u32];
      if (evs[i].events & EPOLLOUT) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c->id};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        if (e_send(ep, c) != 0)
          continue;
      }
      if (!(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        continue;
      ssize_t r = read(c->fd, buf, msg_size - c->got);
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (r <= 0) {
        if (errors++ == 0)
          fprintf(stderr, "echo_load: conn %u read: %s\n", c->id,
                  r == 0 ? "closed by the server" : strerror(errno));
        struct epoll_event ev;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, &ev);
        continue;
      }
      if (check(c, buf, (size_t)r) != 0) {
        struct epoll_event ev;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, &ev);
        continue;
      }
      if (c->got == msg_size) {
        next_message(c);
        e_send(ep, c);
      }
    }
    if (errors || mismatches)
      break;
    if (tick() != 0)
      break;
  }
  free(buf);
  close(ep);
  return 0;
}

/* ---- Main ------------------------------------------------------------------------- */

static int usage(int code) {
  fprintf(code ? stderr : stdout,
          "usage: echo_load [-c conns] [-s size] [-d seconds] [-w warmup] "
          "-p port [-h host]\n"
          "                 [-m uring|epoll] [-b] [-P server_pid] "
          "[-t tracepoint,...]\n");
  return code;
}

int main(int argc, char **argv) {
  const char *mode = "uring";
  char *tplist = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "bc:s:d:w:p:h:m:P:t:")) != -1) {
    switch (opt) {
    case 'c': nconns = (unsigned)atoi(optarg); break;
    case 's': msg_size = (size_t)atol(optarg); break;
    case 'd': duration = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'p': port = atoi(optarg); break;
    case 'h': host = optarg; break;
    case 'm': mode = optarg; break;
    case 'P': server_pid = atoi(optarg); break;
    case 't': tplist = optarg; break;
    case 'b': busy_poll = 1; break;
    default: return usage(2);
    }
  }
  if (port <= 0 || port > 65535 || nconns == 0 || msg_size == 0 ||
      duration <= 0 || warmup < 0 ||
      (strcmp(mode, "uring") != 0 && strcmp(mode, "epoll") != 0) ||
      (tplist != NULL && server_pid <= 0))
    return usage(2);
  clk_tck = (double)sysconf(_SC_CLK_TCK);

  pattern = malloc(PATTERN_MOD + msg_size);
  conns = calloc(nconns, sizeof *conns);
  if (pattern == NULL || conns == NULL)
    return 1;
  for (size_t i = 0; i < PATTERN_MOD + msg_size; i++)
    pattern[i] = (char)(i % PATTERN_MOD);

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < nconns + 64) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (connect_all() != 0)
    return 1;
  if (tplist != NULL && open_tracepoints(tplist) != 0)
    return 1;

  t_start = t_last_progress = now();
  if (strcmp(mode, "uring") == 0)
    run_uring();
  else
    run_epoll();

  if (phase != 2 || errors || mismatches) {
    fprintf(stderr, "echo_load: FAILED (%llu errors, %llu mismatches%s)\n",
            (unsigned long long)errors, (unsigned long long)mismatches,
            phase != 2 ? ", window not completed" : "");
    return 1;
  }
  uint64_t mn = UINT64_MAX, mx = 0;
  for (unsigned i = 0; i < nconns; i++) {
    uint64_t d = conns[i].done - conns[i].mark;
    mn = d < mn ? d : mn;
    mx = d > mx ? d : mx;
  }
  double secs = w1.t - w0.t;
  uint64_t msgs = w1.done - w0.done;
  printf("ECHO conns=%u size=%zu secs=%.3f msgs=%llu msgs_per_s=%.0f "
         "min_conn=%llu max_conn=%llu client_cpu_s=%.3f client_sleeps=%llu",
         nconns, msg_size, secs, (unsigned long long)msgs, msgs / secs,
         (unsigned long long)mn, (unsigned long long)mx, w1.ccpu - w0.ccpu,
         (unsigned long long)(w1.csleep - w0.csleep));
  if (server_pid > 0)
    printf(" server_cpu_s=%.3f server_run_s=%.4f server_sleeps=%llu",
           w1.scpu - w0.scpu, w1.srun - w0.srun,
           (unsigned long long)(w1.ssleep - w0.ssleep));
  for (int i = 0; i < ntp; i++) {
    const char *n = strchr(tps[i].name, ':') + 1;
    printf(" %s%s=%llu", strncmp(n, "sys_", 4) == 0 ? "" : "tp_", n,
           (unsigned long long)(w1.tp[i] - w0.tp[i]));
  }
  printf(" errors=0 mode=%s%s\n", mode, busy_poll ? "-busy" : "");
  for (unsigned i = 0; i < nconns; i++)
    close(conns[i].fd);
  return 0;
}
