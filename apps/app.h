/* What eddy's programs share: the options every one of them takes
 * (--help, --port, --host, --backend) and the address they listen on.
 * Static functions in a header, so that each program stays one file and
 * builds with nothing but eddy.h. */
#ifndef EDDY_APP_H
#define EDDY_APP_H

#include <eddy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *prog;         /* "eddy-hello", for messages */
  void (*usage)(FILE *out); /* prints the program's usage */
  int port;                 /* the default until --port */
  const char *host;         /* the default until --host (may be NULL) */
} app_args_t;

/* 0..65535, or -1. */
static inline int app_parse_port(const char *s) {
  char *end;
  long p = strtol(s, &end, 10);
  return *s != '\0' && *end == '\0' && p >= 0 && p <= 65535 ? (int)p : -1;
}

/* The backend must be chosen before the loop starts: EDDY_BACKEND. */
static inline int app_pick_backend(const char *prog, const char *name) {
  if (strcmp(name, "epoll") != 0 && strcmp(name, "io_uring") != 0) {
    fprintf(stderr, "%s: unknown backend '%s' (epoll, io_uring)\n", prog, name);
    return -1;
  }
  if (!eddy_backend_available(name)) {
    fprintf(stderr, "%s: backend '%s' is not available here\n", prog, name);
    return -1;
  }
  setenv("EDDY_BACKEND", name, 1);
  return 0;
}

/* Looks at argv[*i]: 1 if it was one of the shared options (*i then points
 * at its value), 0 if it is the program's own, -1 if its value is missing
 * or bad.  --help prints the usage and exits 0; an unknown or unavailable
 * backend exits 1 after saying so. */
static inline int app_option(app_args_t *a, int argc, char **argv, int *i) {
  const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
  if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
    a->usage(stdout);
    exit(0);
  }
  int port = strcmp(o, "--port") == 0, host = strcmp(o, "--host") == 0;
  if (!port && !host && strcmp(o, "--backend") != 0)
    return 0;
  if (v == NULL)
    return -1;
  ++*i;
  if (port)
    return (a->port = app_parse_port(v)) >= 0 ? 1 : -1;
  if (host)
    a->host = v;
  else if (app_pick_backend(a->prog, v) != 0)
    exit(1);
  return 1;
}

/* A numeric IPv4 or IPv6 address (the latter has a ':'); 0 or an error,
 * *v6 says which. */
static inline int app_addr(const char *host, int port,
                           struct sockaddr_storage *ss, int *v6) {
  *v6 = strchr(host, ':') != NULL;
  return *v6 ? eddy_ip6_addr(host, port, (struct sockaddr_in6 *)ss)
             : eddy_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

/* A whole response: status, Content-Type and the body. */
static inline void app_send(eddy_http_res_t *res, int status, const char *type,
                            const char *body, size_t len) {
  eddy_http_set_status(res, status);
  eddy_http_set_header(res, "Content-Type", type);
  eddy_http_end(res, body, len);
}

#endif
