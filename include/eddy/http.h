/* eddy HTTP/1.1 server: keep-alive, pipelining, streaming bodies both ways.
 * Included by eddy.h (through eddy/net.h); not to be included alone.
 *
 * A server owns its listeners and connections.  For each request whose
 * headers are complete it calls the request callback with the request (its
 * head, parsed in place) and its response.  The response is answered with
 * eddy_http_set_status / eddy_http_set_header / eddy_http_write and finally
 * eddy_http_end, at once or later, from any callback of the loop.
 *
 * The contract:
 *  - Every request handed to the callback must be ended with eddy_http_end,
 *    exactly once, even if its connection went away meanwhile (the abort
 *    callback says so).  eddy_http_end releases the request and response:
 *    neither may be touched afterwards, and none of their callbacks runs.
 *  - The request's strings point into the server's read buffers and stay
 *    valid until eddy_http_end.
 *  - Responses leave in request order, whatever order the application ends
 *    them in: a later response is buffered until the ones before it end.
 *  - The body is read like a stream: eddy_http_req_read_start(req, cb)
 *    delivers it, eddy_http_req_read_stop pauses it (and with it reading
 *    from the socket).  A body nobody reads waits, unread, until it is read
 *    or the response ends; then the rest is read and thrown away.
 *  - Bad requests never reach the callback: the server answers them (400,
 *    408, 413, 414, 431, 505) and closes the connection.
 *
 * docs/http.md tells the whole story, limits and timeouts included. */
#ifndef EDDY_HTTP_H
#define EDDY_HTTP_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_http_server_s eddy_http_server_t;
typedef struct eddy_http_req_s eddy_http_req_t;
typedef struct eddy_http_res_s eddy_http_res_t;

/* Bytes that are not NUL-terminated. */
typedef struct {
  const char *base;
  size_t len;
} eddy_http_str_t;

typedef struct {
  eddy_http_str_t name;  /* as sent (HTTP names are case-insensitive) */
  eddy_http_str_t value; /* without surrounding spaces */
} eddy_http_header_t;

typedef enum {
  EDDY_HTTP_OTHER = 0, /* method_name tells which */
  EDDY_HTTP_GET,
  EDDY_HTTP_HEAD,
  EDDY_HTTP_POST,
  EDDY_HTTP_PUT,
  EDDY_HTTP_DELETE,
  EDDY_HTTP_OPTIONS,
  EDDY_HTTP_PATCH,
  EDDY_HTTP_CONNECT,
  EDDY_HTTP_TRACE
} eddy_http_method;

/* Runs once per request, when its headers are complete. */
typedef void (*eddy_http_request_cb)(eddy_http_req_t *req,
                                     eddy_http_res_t *res);
/* nread > 0: body bytes in *buf, borrowed for the call (retain a copy of
 * the slice to keep them).  nread == EDDY_EOF: the body is complete.
 * nread < 0: the body will not complete: EDDY_EMSGSIZE (over the server's
 * maximum; 413 was answered), EDDY_EPROTO (malformed; 400 was answered),
 * EDDY_ECONNRESET (the client went away; heard even while paused). */
typedef void (*eddy_http_body_cb)(eddy_http_req_t *req, ssize_t nread,
                                  const eddy_slice_t *buf);
/* The response's queued bytes fell below the high-water mark after
 * eddy_http_write returned EDDY_STREAM_FULL. */
typedef void (*eddy_http_drain_cb)(eddy_http_res_t *res);
/* The connection is gone before the response ended (status says why):
 * writes fail from now on; eddy_http_end must still be called. */
typedef void (*eddy_http_abort_cb)(eddy_http_res_t *res, int status);
typedef void (*eddy_http_close_cb)(eddy_http_server_t *srv);

struct eddy_http_req_s {
  void *data; /* the application's */
  eddy_http_server_t *server;
  eddy_http_method method;
  eddy_http_str_t method_name;       /* "GET" */
  eddy_http_str_t target;            /* as sent: "/a/b?x=1" */
  eddy_http_str_t path;              /* "/a/b" */
  eddy_http_str_t query;             /* "x=1"; empty when there is no '?' */
  unsigned char version_major;       /* 1 */
  unsigned char version_minor;       /* 0 or 1 */
  const eddy_http_header_t *headers; /* in arrival order */
  size_t nheaders;
  int64_t content_length; /* -1 when not sent */
  int chunked;            /* Transfer-Encoding: chunked */
};

struct eddy_http_res_s {
  void *data; /* the application's */
  eddy_http_req_t *req;
};

typedef struct {
  /* Request line plus headers, bytes: over it 431, or 414 while the target
   * is still being read.  Default 16384. */
  size_t max_header_size;
  /* Request body, bytes: over it 413.  Default 1 MiB (nginx's default);
   * UINT64_MAX for no limit. */
  uint64_t max_body_size;
  /* From the first byte of a request until its headers are complete; not
   * restarted by further bytes, so a client that trickles them cannot hold
   * a connection: 408.  Default 10000. */
  uint64_t headers_timeout_ms;
  /* An idle keep-alive connection is closed after this.  Default 5000. */
  uint64_t keepalive_timeout_ms;
  /* After a final response that closes the connection, the server shuts
   * down its side and reads (and drops) what the client still sends for
   * at most this long before closing, so the client reads the response
   * instead of a reset.  Default 2000. */
  uint64_t linger_timeout_ms;
  int backlog; /* default 511 */
} eddy_http_server_options_t;

typedef struct {
  uint64_t connections;    /* accepted since init */
  uint64_t requests;       /* handed to the request callback */
  uint64_t rejected;       /* answered by the server with 4xx/5xx */
  size_t open_connections; /* open now */
  size_t active_requests;  /* handed to the callback, not yet ended */
} eddy_http_stats_t;

struct eddy_http_server_s {
  void *data; /* the application's */
  eddy_loop_t *loop;
  /* Private. */
  eddy_http_server_options_t opts;
  eddy_http_request_cb on_request;
  eddy_http_close_cb close_cb;
  eddy_http_stats_t stats;
  eddy_timer_t date_timer;  /* refreshes date_line once a second */
  eddy_timer_t sweep_timer; /* the timeouts of every connection */
  uint64_t sweep_due;
  eddy_queue_t listeners;
  eddy_queue_t conns;
  eddy_queue_t idle_list;   /* keep-alive, waiting for a request */
  eddy_queue_t head_list;   /* receiving a request's headers */
  eddy_queue_t linger_list; /* shut down, dropping what still arrives */
  void *free_conns;
  void *free_exchanges;
  void *free_batches;
  unsigned nfree_conns, nfree_exchanges, nfree_batches;
  unsigned closing_handles;
  size_t live_exchanges; /* taken from the pool, not yet back */
  unsigned flags;
  char date_line[40]; /* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" */
};

EDDY_EXTERN void eddy_http_server_options_init(eddy_http_server_options_t *o);
/* opts may be NULL for the defaults.  Once this succeeded the server must
 * be closed with eddy_http_server_close. */
EDDY_EXTERN int eddy_http_server_init(eddy_loop_t *loop,
                                      eddy_http_server_t *srv,
                                      const eddy_http_server_options_t *opts,
                                      eddy_http_request_cb on_request);
/* Listens on a TCP address (port 0: any free port); flags are EDDY_TCP_*.
 * May be called several times for several addresses. */
EDDY_EXTERN int eddy_http_server_listen(eddy_http_server_t *srv,
                                        const struct sockaddr *addr,
                                        unsigned flags);
EDDY_EXTERN int eddy_http_server_listen_unix(eddy_http_server_t *srv,
                                             const char *path);
/* The bound address of the index-th listener (in listen order), or
 * EDDY_ENOENT past the last. */
EDDY_EXTERN int eddy_http_server_address(const eddy_http_server_t *srv,
                                         unsigned index,
                                         struct sockaddr_storage *addr);
/* Graceful close: stops accepting, closes idle connections, lets requests
 * in flight finish (their responses say Connection: close), closes each
 * connection after its last response, then calls close_cb (may be NULL).
 * The server's memory may be freed in or after close_cb. */
EDDY_EXTERN void eddy_http_server_close(eddy_http_server_t *srv,
                                        eddy_http_close_cb close_cb);
EDDY_EXTERN void eddy_http_server_stats(const eddy_http_server_t *srv,
                                        eddy_http_stats_t *out);

/* The first header of that name (case-insensitive), or NULL. */
EDDY_EXTERN const eddy_http_str_t *
eddy_http_req_header(const eddy_http_req_t *req, const char *name);
/* Starts (or resumes) delivering the body to cb; with "Expect:
 * 100-continue" the first call sends "100 Continue".  Bytes that arrived
 * before are delivered from the next tick, never inside this call. */
EDDY_EXTERN int eddy_http_req_read_start(eddy_http_req_t *req,
                                         eddy_http_body_cb cb);
/* Pauses the body; the connection stops reading once what it already read
 * is held. */
EDDY_EXTERN int eddy_http_req_read_stop(eddy_http_req_t *req);

/* 200..999 (interim responses are the server's); EDDY_EBUSY once the
 * headers are sent. */
EDDY_EXTERN int eddy_http_set_status(eddy_http_res_t *res, int status);
/* Adds a header line (values are copied).  Content-Length fixes the body's
 * length; "Connection: close" closes the connection after the response;
 * a Date replaces the server's.  Transfer-Encoding is the server's:
 * EDDY_EINVAL, as are CR, LF or NUL in either string.  EDDY_EBUSY once the
 * headers are sent. */
EDDY_EXTERN int eddy_http_set_header(eddy_http_res_t *res, const char *name,
                                     const char *value);
EDDY_EXTERN int eddy_http_set_header_n(eddy_http_res_t *res, const char *name,
                                       size_t name_len, const char *value,
                                       size_t value_len);
/* Sends the headers if not yet sent, then the bytes (copied): chunked when
 * no Content-Length was set and the request is HTTP/1.1.  Returns 0,
 * EDDY_STREAM_FULL (queued, but wait for the drain callback before writing
 * more), or an error: EDDY_ECONNRESET when the connection is gone,
 * EDDY_ECANCELED when the server answered in the response's place (a body
 * over the limit), EDDY_EINVAL past the Content-Length set. */
EDDY_EXTERN int eddy_http_write(eddy_http_res_t *res, const void *data,
                                size_t len);
/* Writes data (may be NULL with len 0) and ends the response.  If nothing
 * was written before and no Content-Length set, the length is len.
 * Releases the request and response, whatever the result. */
EDDY_EXTERN int eddy_http_end(eddy_http_res_t *res, const void *data,
                              size_t len);
/* The file given to eddy_http_send_file is no longer needed: status 0
 * when its bytes left, else why not (the connection went away). */
typedef void (*eddy_http_file_cb)(void *arg, int status);
/* Ends the response with len bytes of the regular file fd from offset as
 * its body, sent with sendfile(2) after the head (in request order with
 * pipelining, keep-alive kept).  Sets Content-Length: len, unless the
 * application set one (then it must equal len: else EDDY_EINVAL).  For HEAD
 * and 304 no body byte is sent.  The file's offset is not used; fd must
 * stay open until done(arg, status) runs, which happens exactly once when
 * this returns 0, never inside this call, and never when it returns an
 * error.  The response is released as by eddy_http_end, except on
 * EDDY_EINVAL and EDDY_EBUSY (the head was already sent by eddy_http_write):
 * then it is still the caller's to end. */
EDDY_EXTERN int eddy_http_send_file(eddy_http_res_t *res, int fd,
                                    int64_t offset, uint64_t len,
                                    eddy_http_file_cb done, void *arg);
EDDY_EXTERN int eddy_http_headers_sent(const eddy_http_res_t *res);
EDDY_EXTERN void eddy_http_res_set_drain_cb(eddy_http_res_t *res,
                                            eddy_http_drain_cb cb);
EDDY_EXTERN void eddy_http_res_set_abort_cb(eddy_http_res_t *res,
                                            eddy_http_abort_cb cb);

/* "OK", "Not Found", ...; "Unknown" for codes without a standard name. */
EDDY_EXTERN const char *eddy_http_status_reason(int status);

#ifdef __cplusplus
}
#endif

#include "eddy/http_static.h"

#endif
