/* What the net/http*.c files share.
 *
 *   http_server.c    options, listeners, accepting, pools, the Date and
 *                    timeout timers, graceful close
 *   http_parse.c     llhttp's callbacks: the request head parsed in place,
 *                    heads that span reads, the checks llhttp 8.1 lacks
 *   http_conn.c      a connection's life: reading, the response queue in
 *                    request order, body delivery and pausing, closing
 *   http_out.c       output buffers and writes: one eddy_write per batch
 *   http_response.c  the response API: status, headers, framing
 *
 * Who owns what:
 *  - A connection (eddy__http_conn_t) is the server's; it goes back to the
 *    server's pool in its close callback.
 *  - An exchange (eddy__http_exch_t: one request and its response) is
 *    taken from the server's pool when a request begins.  It is released
 *    when three things are true: the application ended it (or never saw
 *    it), it left the connection's response queue, and its request is no
 *    longer being parsed.  A connection that dies detaches its exchanges
 *    (conn = NULL); a detached exchange waits for eddy_http_end.
 *  - Output is written in batches (eddy__http_batch_t: up to four slab
 *    chunks and the eddy_write_t that sends them), released by the write
 *    callback. */
#ifndef EDDY_NET_HTTP_INTERNAL_H
#define EDDY_NET_HTTP_INTERNAL_H

#include <llhttp.h>

#include "net/internal.h"

typedef struct eddy__http_conn_s eddy__http_conn_t;
typedef struct eddy__http_exch_s eddy__http_exch_t;
typedef struct eddy__http_batch_s eddy__http_batch_t;

/* An output chunk is the largest slab slice: carved from 8 KB slabs, so a
 * response costs no malloc. */
#define EDDY__HTTP_CHUNK EDDY_SLAB_MAX_SLICE
/* eddy_write keeps up to four buffers without allocating. */
#define EDDY__HTTP_BATCH_CHUNKS 4
#define EDDY__HTTP_INLINE_HEADERS 24
#define EDDY__HTTP_MAX_HEADERS 512
#define EDDY__HTTP_STAGE 192
/* Pools keep at most this many free objects of each kind. */
#define EDDY__HTTP_POOL_KEEP 256
/* "Date: " + IMF-fixdate + CRLF */
#define EDDY__HTTP_DATE_LINE 37

struct eddy__http_batch_s {
  eddy_write_t w; /* w.data is the connection */
  eddy__http_batch_t *next;
  unsigned n;
  eddy_slice_t chunk[EDDY__HTTP_BATCH_CHUNKS]; /* .len is the capacity */
  size_t used[EDDY__HTTP_BATCH_CHUNKS];
  /* A file range sent after the chunks (eddy_http_send_file), which closes
   * the batch; file_cb, if set, hears when the file is no longer needed. */
  int file_fd; /* -1: none */
  int64_t file_off;
  uint64_t file_len; /* 0 for a HEAD: the callback still runs in order */
  eddy_http_file_cb file_cb;
  void *file_arg;
};

/* Bytes not yet handed to eddy_write. */
typedef struct {
  eddy__http_batch_t *head;
  eddy__http_batch_t *tail;
  size_t bytes;
} eddy__http_out_t;

/* eddy__http_exch_t.flags */
enum {
  EDDY__X_HANDED = 1u << 0,      /* the request callback has it */
  EDDY__X_MSG_DONE = 1u << 1,    /* the request's body is complete */
  EDDY__X_READING = 1u << 2,     /* read_start'ed and not stopped */
  EDDY__X_EXPECT = 1u << 3,      /* Expect: 100-continue */
  EDDY__X_CONTINUED = 1u << 4,   /* 100 Continue produced */
  EDDY__X_HEAD_SENT = 1u << 5,   /* response head produced */
  EDDY__X_ENDED = 1u << 6,       /* every response byte produced */
  EDDY__X_USER_DONE = 1u << 7,   /* eddy_http_end called, or never handed */
  EDDY__X_CHUNKED = 1u << 8,     /* response body in chunks */
  EDDY__X_NO_BODY = 1u << 9,     /* HEAD, 204, 304: no body bytes */
  EDDY__X_HAS_CL = 1u << 10,     /* the application set Content-Length */
  EDDY__X_HAS_DATE = 1u << 11,   /* the application set Date */
  EDDY__X_CLOSE = 1u << 12,      /* the connection ends after this response */
  EDDY__X_KEEP_ALIVE = 1u << 13, /* the request allows keep-alive */
  EDDY__X_NEED_DRAIN = 1u << 14, /* eddy_http_write said full */
  EDDY__X_EOF_SENT = 1u << 15,   /* the body callback heard the end */
  EDDY__X_QUEUED = 1u << 16,     /* in the connection's response queue */
  EDDY__X_USER_CLOSE = 1u << 17, /* the application set Connection: close */
  EDDY__X_BUSY = 1u << 18,       /* in a callback: release waits */
  EDDY__X_COMPACT = 1u << 19,    /* the head was copied out of the read */
};

struct eddy__http_exch_s {
  eddy_http_req_t req;
  eddy_http_res_t res;
  eddy__http_conn_t *conn; /* NULL once detached */
  eddy_http_server_t *srv;
  eddy__http_exch_t *next; /* response queue, or the free list */
  unsigned flags;
  int status;
  int body_err;      /* for the body callback: an error not yet delivered */
  eddy_slice_t head; /* retained bytes the request's strings point into */
  eddy_http_header_t *hdrs; /* inline_hdrs or allocated */
  unsigned caphdrs;
  uint64_t body_bytes;
  uint64_t cl_left; /* response bytes the Content-Length still expects */
  eddy_http_body_cb body_cb;
  eddy_http_drain_cb drain_cb;
  eddy_http_abort_cb abort_cb;
  /* Body bytes read while nobody reads them: a retained read slice, or a
   * copy (held_cap != 0) when several pieces were held. */
  eddy_slice_t held;
  size_t held_cap;
  eddy__http_out_t out; /* response bytes waiting for earlier responses */
  char *stage;          /* response header lines: stage_inline or malloc */
  size_t stage_len;
  size_t stage_cap;
  char stage_inline[EDDY__HTTP_STAGE];
  eddy_http_header_t inline_hdrs[EDDY__HTTP_INLINE_HEADERS];
};

/* eddy__http_conn_t.flags */
enum {
  EDDY__C_IN_READ = 1u << 0,    /* in the read callback: flush at its end */
  EDDY__C_NO_MORE = 1u << 1,    /* no request after the current one */
  EDDY__C_DISCARD = 1u << 2,    /* parse nothing more, drop what arrives */
  EDDY__C_READ_EOF = 1u << 3,   /* the client's side ended */
  EDDY__C_OUT_FULL = 1u << 4,   /* the write queue is above high water */
  EDDY__C_TICK = 1u << 5,       /* conn_tick is queued */
  EDDY__C_SHUTDOWN = 1u << 6,   /* our side is shut down: lingering */
  EDDY__C_CLOSING = 1u << 7,    /* eddy_close called */
  EDDY__C_FREE_LATER = 1u << 8, /* closed while a tick was queued */
  EDDY__C_UNIX = 1u << 9,
};

/* eddy__http_conn_t.pflags: the head being parsed. */
enum {
  EDDY__P_BASE = 1u << 0,    /* head_base is set */
  EDDY__P_METHOD = 1u << 1,  /* the method span began */
  EDDY__P_URL = 1u << 2,     /* the target span began */
  EDDY__P_FIELD = 1u << 5,   /* a header name span is open */
  EDDY__P_VALUE = 1u << 6,   /* a header value span is open */
  EDDY__P_HEADERS = 1u << 7, /* headers complete: what follows is body */
  EDDY__P_CL = 1u << 8,
  EDDY__P_TE = 1u << 9,
  EDDY__P_TE_CHUNKED = 1u << 10, /* the last coding seen is chunked */
  EDDY__P_HOST = 1u << 11,
  EDDY__P_EXPECT = 1u << 12,
};

struct eddy__http_conn_s {
  union {
    eddy_stream_t stream;
    eddy_tcp_t tcp;
    eddy_unix_t un;
  } s; /* first: the handle */
  llhttp_t parser;
  eddy_http_server_t *srv;
  eddy_queue_t node;        /* srv->conns */
  eddy_queue_t tnode;       /* a timeout list of srv, or alone */
  uint64_t since;           /* when it joined that list */
  eddy__http_exch_t *first; /* the response queue, in request order */
  eddy__http_exch_t *last;
  eddy__http_exch_t *parsing; /* the request being received */
  const eddy_slice_t *region; /* the slice being parsed */
  const char *region_end;
  const char *head_base; /* the head's first byte, in region */
  eddy_slice_t partial;  /* an unfinished head, copied; or none */
  size_t partial_len;
  eddy__http_out_t out; /* bytes for the next eddy_write */
  eddy_shutdown_t sd;
  uint64_t cl;     /* Content-Length of the head being parsed */
  size_t extra;    /* chunk extension and trailer bytes of this request */
  unsigned writes; /* eddy_writes in flight */
  unsigned nheld;  /* exchanges holding body bytes */
  unsigned ticks;  /* conn_tick calls queued */
  unsigned flags;
  unsigned pflags;
  int reject; /* status the parser callbacks decided to answer */
};

/* s[0..n) equals lit (lower case, letters, digits and '-') ignoring case.
 * For names already known to be tokens: '|0x20' folds only letters there. */
static inline int eddy__http_ieq(const char *s, const char *lit, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((s[i] | 0x20) != lit[i])
      return 0;
  return 1;
}

static inline eddy__http_exch_t *eddy__http_req_exch(const eddy_http_req_t *r) {
  return eddy__container_of(r, eddy__http_exch_t, req);
}

static inline eddy__http_exch_t *eddy__http_res_exch(const eddy_http_res_t *r) {
  return eddy__container_of(r, eddy__http_exch_t, res);
}

/* eddy_http_server_t.flags */
enum {
  EDDY__S_CLOSING = 1u << 0,
  EDDY__S_TIMERS_CLOSED = 1u << 1,
};

/* http_server.c */
eddy__http_exch_t *eddy__http_exch_get(eddy_http_server_t *srv);
void eddy__http_exch_put(eddy_http_server_t *srv, eddy__http_exch_t *e);
eddy__http_batch_t *eddy__http_batch_get(eddy_http_server_t *srv);
void eddy__http_batch_put(eddy_http_server_t *srv, eddy__http_batch_t *b);
/* Joins list from now; timer_keep joins it keeping c->since. */
void eddy__http_timer_set(eddy__http_conn_t *c, eddy_queue_t *list);
void eddy__http_timer_keep(eddy__http_conn_t *c, eddy_queue_t *list);
void eddy__http_timer_stop(eddy__http_conn_t *c);
void eddy__http_conn_close(eddy__http_conn_t *c);
/* Frees a closed connection whose close callback waited for a tick. */
void eddy__http_conn_release(eddy__http_conn_t *c);
void eddy__http_server_check_closed(eddy_http_server_t *srv);

/* http_parse.c */
void eddy__http_parser_init(eddy__http_conn_t *c);
void eddy__http_parse(eddy__http_conn_t *c, const eddy_slice_t *buf,
                      size_t len);

/* http_conn.c */
void eddy__http_conn_start(eddy__http_conn_t *c);
void eddy__http_conn_abort(eddy__http_conn_t *c, int err);
void eddy__http_reject(eddy__http_conn_t *c, int status);
void eddy__http_timeout(eddy__http_conn_t *c, eddy_queue_t *list);
void eddy__http_queue_push(eddy__http_conn_t *c, eddy__http_exch_t *e);
void eddy__http_queue_advance(eddy__http_conn_t *c);
void eddy__http_exch_maybe_release(eddy__http_exch_t *e);
int eddy__http_body(eddy__http_exch_t *e, const char *at, size_t len);
void eddy__http_message_done(eddy__http_conn_t *c);
void eddy__http_drop_held(eddy__http_exch_t *e);
/* conn_tick soon: deliveries, then a flush; never inside the caller. */
void eddy__http_schedule(eddy__http_conn_t *c);
/* A flush soon: at the end of the read callback, or from a tick. */
void eddy__http_want_flush(eddy__http_conn_t *c);
/* A write of the connection finished with status. */
void eddy__http_written(eddy__http_conn_t *c, int status);
void eddy__http_stop_parsing(eddy__http_conn_t *c);
int eddy__http_is_idle(const eddy__http_conn_t *c);
void eddy__http_maybe_finish(eddy__http_conn_t *c);

/* http_out.c */
char *eddy__http_reserve(eddy__http_exch_t *e, size_t n);
void eddy__http_unreserve(eddy__http_exch_t *e, size_t n);
int eddy__http_append(eddy__http_exch_t *e, const void *data, size_t n);
void eddy__http_out_move(eddy__http_out_t *to, eddy__http_out_t *from);
void eddy__http_out_free(eddy_http_server_t *srv, eddy__http_out_t *o);
void eddy__http_flush(eddy__http_conn_t *c);
size_t eddy__http_queued(const eddy__http_exch_t *e);
/* Ends e's output with a file range (len may be 0); cb hears when the
 * file is no longer needed.  EDDY_ENOMEM, and then cb never runs. */
int eddy__http_append_file(eddy__http_exch_t *e, int fd, int64_t offset,
                           uint64_t len, eddy_http_file_cb cb, void *arg);

/* http_response.c */
void eddy__http_error_response(eddy__http_exch_t *e, int status);
void eddy__http_send_continue(eddy__http_exch_t *e);
void eddy__http_date_format(char line[EDDY__HTTP_DATE_LINE + 1], int64_t t);

#endif
