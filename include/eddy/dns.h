/* eddy DNS: getaddrinfo on the worker pool, as libuv's uv_getaddrinfo and
 * Node's dns.lookup.  Included by eddy.h (through eddy/net.h); not to be
 * included alone.
 *
 * The lookup runs as slow work (EDDY_WORK_SLOW), so a resolver that hangs
 * on a dead name server occupies at most half the pool and file work goes
 * on.  getaddrinfo's EAI_* codes become eddy errors:
 *
 *   EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY       EDDY_ENOENT
 *   EAI_AGAIN                                    EDDY_EAGAIN
 *   EAI_MEMORY                                   EDDY_ENOMEM
 *   EAI_SERVICE, EAI_FAMILY, EAI_SOCKTYPE,
 *   EAI_BADFLAGS                                 EDDY_EINVAL
 *   EAI_SYSTEM                                   -errno (EDDY_EIO if 0)
 *   anything else (EAI_FAIL, EAI_OVERFLOW, ...)  EDDY_EIO
 *
 * and req->gai_error keeps the EAI_* code itself for gai_strerror(). */
#ifndef EDDY_DNS_H
#define EDDY_DNS_H

#include <netdb.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_getaddrinfo_s eddy_getaddrinfo_t;

/* On the loop's thread.  status 0 and res the list (the caller's: free it
 * with eddy_freeaddrinfo), or an error and res NULL.  EDDY_ECANCELED: the
 * request was cancelled before a thread took it. */
typedef void (*eddy_getaddrinfo_cb)(eddy_getaddrinfo_t *req, int status,
                                    struct addrinfo *res);

struct eddy_getaddrinfo_s {
  void *data;
  eddy_loop_t *loop;
  struct addrinfo *addrinfo; /* the result, also given to the callback */
  int gai_error;             /* getaddrinfo's return, 0 or EAI_* */
  /* Private. */
  eddy_getaddrinfo_cb cb;
  eddy_work_t work;
  char *node; /* node and service share one allocation */
  char *service;
  struct addrinfo hints;
  int has_hints;
  int sys_errno; /* errno after EAI_SYSTEM, read on the worker */
};

/* Resolves node and/or service (not both NULL) with hints (NULL: any
 * family, socket type and protocol).  node, service and hints are copied.
 * With a callback the lookup runs on the pool and the call returns 0 or an
 * error (then cb is never called).  With cb NULL it runs on the caller's
 * thread, as libuv's does: the call returns the status and leaves the list
 * in req->addrinfo. */
EDDY_EXTERN int eddy_getaddrinfo(eddy_loop_t *loop, eddy_getaddrinfo_t *req,
                                 eddy_getaddrinfo_cb cb, const char *node,
                                 const char *service,
                                 const struct addrinfo *hints);
/* Takes a lookup no thread has started off the pool's queue; its callback
 * then gets EDDY_ECANCELED.  EDDY_EBUSY if it already runs or ran,
 * EDDY_EINVAL if it never went to the pool (a synchronous lookup). */
EDDY_EXTERN int eddy_getaddrinfo_cancel(eddy_getaddrinfo_t *req);
/* Frees a result list; NULL is allowed. */
EDDY_EXTERN void eddy_freeaddrinfo(struct addrinfo *res);

#ifdef __cplusplus
}
#endif
#endif
