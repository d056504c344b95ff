/* getaddrinfo on the worker pool.
 *
 * The request copies what it is given, so the caller's strings may go as
 * soon as eddy_getaddrinfo returns.  The worker touches only the request:
 * it calls getaddrinfo and records its return and errno (errno is the
 * worker's, so it must be read there); the loop's thread maps them to an
 * eddy error, frees the copies and calls back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"

/* The table in include/eddy/dns.h.  EAI_NODATA and EAI_ADDRFAMILY are
 * glibc's (_GNU_SOURCE): a name that exists without an address (of the
 * family asked for), which for a caller is the same as no such name. */
static int map_gai_error(int rc, int sys_errno) {
  switch (rc) {
  case 0:
    return 0;
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY:
#endif
  case EAI_NONAME:
    return EDDY_ENOENT;
  case EAI_AGAIN:
    return EDDY_EAGAIN;
  case EAI_MEMORY:
    return EDDY_ENOMEM;
  case EAI_SERVICE:
  case EAI_FAMILY:
  case EAI_SOCKTYPE:
  case EAI_BADFLAGS:
    return EDDY_EINVAL;
  case EAI_SYSTEM:
    return sys_errno > 0 ? -sys_errno : EDDY_EIO;
  default:
    return EDDY_EIO;
  }
}

/* Runs getaddrinfo with the request's copies; on any thread. */
static void resolve(eddy_getaddrinfo_t *req) {
  struct addrinfo *res = NULL;
  errno = 0;
  int rc = getaddrinfo(req->node, req->service,
                       req->has_hints ? &req->hints : NULL, &res);
  req->sys_errno = rc == EAI_SYSTEM ? errno : 0;
  req->gai_error = rc;
  req->addrinfo = rc == 0 ? res : NULL;
}

/* The copies' single allocation starts at node, or at service when there
 * is no node. */
static void free_copies(eddy_getaddrinfo_t *req) {
  free(req->node != NULL ? req->node : req->service);
  req->node = NULL;
  req->service = NULL;
}

static void gai_work(eddy_work_t *w) {
  resolve(eddy__container_of(w, eddy_getaddrinfo_t, work));
}

static void gai_after(eddy_work_t *w, int status) {
  eddy_getaddrinfo_t *req = eddy__container_of(w, eddy_getaddrinfo_t, work);
  free_copies(req);
  if (status == 0) {
    status = map_gai_error(req->gai_error, req->sys_errno);
  } else {
    req->addrinfo = NULL; /* cancelled: the worker never ran */
    req->gai_error = 0;
  }
  /* The callback may free or reuse req: nothing touches it afterwards (the
   * pool calls eddy__after_callback). */
  req->cb(req, status, req->addrinfo);
}

/* node and service in one allocation, each NUL-terminated. */
static int copy_strings(eddy_getaddrinfo_t *req, const char *node,
                        const char *service) {
  size_t nlen = node != NULL ? strlen(node) + 1 : 0;
  size_t slen = service != NULL ? strlen(service) + 1 : 0;
  char *buf = malloc(nlen + slen);
  if (buf == NULL)
    return EDDY_ENOMEM;
  req->node = node != NULL ? memcpy(buf, node, nlen) : NULL;
  req->service = service != NULL ? memcpy(buf + nlen, service, slen) : NULL;
  return 0;
}

int eddy_getaddrinfo(eddy_loop_t *loop, eddy_getaddrinfo_t *req,
                     eddy_getaddrinfo_cb cb, const char *node,
                     const char *service, const struct addrinfo *hints) {
  if (loop == NULL || req == NULL || (node == NULL && service == NULL))
    return EDDY_EINVAL;
  int err = copy_strings(req, node, service);
  if (err != 0)
    return err;
  /* A zeroed work request is one never queued: eddy_getaddrinfo_cancel on
   * a synchronous lookup is then EDDY_EINVAL, not a look at garbage. */
  memset(&req->work, 0, sizeof req->work);
  req->loop = loop;
  req->cb = cb;
  req->addrinfo = NULL;
  req->gai_error = 0;
  req->sys_errno = 0;
  req->has_hints = hints != NULL;
  memset(&req->hints, 0, sizeof req->hints);
  if (hints != NULL) {
    /* Only these four fields are input; the pointers must be NULL. */
    req->hints.ai_flags = hints->ai_flags;
    req->hints.ai_family = hints->ai_family;
    req->hints.ai_socktype = hints->ai_socktype;
    req->hints.ai_protocol = hints->ai_protocol;
  }

  if (cb == NULL) {
    resolve(req);
    free_copies(req);
    return map_gai_error(req->gai_error, req->sys_errno);
  }
  err = eddy_queue_work(loop, &req->work, EDDY_WORK_SLOW, gai_work, gai_after);
  if (err != 0)
    free_copies(req);
  return err;
}

int eddy_getaddrinfo_cancel(eddy_getaddrinfo_t *req) {
  if (req == NULL)
    return EDDY_EINVAL;
  return eddy_cancel(&req->work);
}

void eddy_freeaddrinfo(struct addrinfo *res) {
  if (res != NULL)
    freeaddrinfo(res);
}
