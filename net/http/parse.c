/* Requests parsed in place with llhttp.
 *
 * A request head (request line and headers) that arrives in one read is
 * never copied: llhttp reports its strings piece by piece, we record them
 * as offsets from the head's first byte, and when the head is complete the
 * offsets become pointers into the read buffer, which the request retains.
 * A read that ends inside a head leaves it unfinished: the bytes so far
 * are copied into conn->partial and the next reads are appended there
 * until the head is complete, so a head is always one contiguous piece
 * (bounded by max_header_size) and the offsets survive the move.
 *
 * llhttp 8.1 lets through some of what request smuggling uses, so the
 * callbacks check it: empty header names, obs-fold and bare CR (a scan of
 * the raw head), Transfer-Encoding whose last coding is not chunked, both
 * Content-Length and Transfer-Encoding, differing Content-Lengths, and
 * chunk extensions or trailers without bound. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/http/internal.h"

static eddy__http_conn_t *pconn(llhttp_t *p) {
  return p->data;
}

/* A callback (the application's, through end or close) stopped parsing:
 * llhttp must stop too.  The driver sees DISCARD and does nothing more. */
static int stopped(const eddy__http_conn_t *c) {
  return (c->flags & EDDY__C_DISCARD) || c->parsing == NULL;
}

/* Stops llhttp; the driver answers `status` and closes. */
static int fail(eddy__http_conn_t *c, int status) {
  if (c->reject == 0)
    c->reject = status;
  return -1;
}

/* ---- Spans --------------------------------------------------------------- */

/* 414 while the target is the last thing read (it alone is too long),
 * else 431. */
static int too_big(const eddy__http_conn_t *c, const char *end) {
  const eddy_http_str_t *t = &c->parsing->req.target;
  int in_url = (c->pflags & EDDY__P_URL) && c->parsing->req.nheaders == 0 &&
               (uintptr_t)t->base + t->len == (uintptr_t)(end - c->head_base);
  return in_url ? 414 : 431;
}

static int limit_check(eddy__http_conn_t *c, const char *end) {
  if ((size_t)(end - c->head_base) <= c->srv->opts.max_header_size)
    return 0;
  return fail(c, too_big(c, end));
}

/* Records a piece of a string as an offset from the head's first byte;
 * later pieces of the same string extend it. */
static int span(eddy__http_conn_t *c, eddy_http_str_t *s, unsigned flag,
                const char *at, size_t len) {
  if (!(c->pflags & flag)) {
    c->pflags |= flag;
    s->base = (const char *)(uintptr_t)(at - c->head_base);
    s->len = len;
  } else {
    s->len += len;
  }
  return limit_check(c, at + len);
}

static const char *resolve(const eddy__http_conn_t *c, eddy_http_str_t s) {
  return c->head_base + (uintptr_t)s.base;
}

/* Chunk extensions and trailers have no place in the request we hand
 * out; they are counted so that they cannot go on forever. */
static int extra(eddy__http_conn_t *c, size_t len, int status) {
  c->extra += len;
  return c->extra > c->srv->opts.max_header_size ? fail(c, status) : 0;
}

/* ---- Request line -------------------------------------------------------- */

static int on_message_begin(llhttp_t *p) {
  eddy__http_conn_t *c = pconn(p);
  if (c->flags & EDDY__C_DISCARD)
    return -1;
  eddy__http_exch_t *e = eddy__http_exch_get(c->srv);
  if (e == NULL)
    return fail(c, 503);
  e->conn = c;
  c->parsing = e;
  c->pflags = 0;
  c->cl = 0;
  c->extra = 0;
  /* The headers' deadline counts from the first byte; further bytes do
   * not extend it.  Most heads complete in the read they begin in: the
   * connection joins the timeout list only if this one does not. */
  eddy__queue_remove(&c->tnode);
  c->since = eddy_now(c->srv->loop);
  return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len) {
  eddy__http_conn_t *c = pconn(p);
  if (!(c->pflags & EDDY__P_BASE)) {
    c->pflags |= EDDY__P_BASE;
    c->head_base = at;
  }
  return span(c, &c->parsing->req.method_name, EDDY__P_METHOD, at, len);
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  eddy__http_conn_t *c = pconn(p);
  return span(c, &c->parsing->req.target, EDDY__P_URL, at, len);
}

/* ---- Headers ------------------------------------------------------------- */

static eddy_http_header_t *header_new(eddy__http_exch_t *e) {
  if (e->req.nheaders == e->caphdrs) {
    if (e->caphdrs >= EDDY__HTTP_MAX_HEADERS)
      return NULL;
    unsigned cap = e->caphdrs * 2;
    eddy_http_header_t *h = malloc(cap * sizeof *h);
    if (h == NULL)
      return NULL;
    memcpy(h, e->hdrs, e->req.nheaders * sizeof *h);
    if (e->hdrs != e->inline_hdrs)
      free(e->hdrs);
    e->hdrs = h;
    e->caphdrs = cap;
  }
  /* Its name and value are set by their spans (an empty value in
   * on_header_value_complete). */
  return &e->hdrs[e->req.nheaders++];
}

static eddy_http_header_t *header_last(eddy__http_exch_t *e) {
  return &e->hdrs[e->req.nheaders - 1];
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  eddy__http_conn_t *c = pconn(p);
  eddy__http_exch_t *e = c->parsing;
  if (c->pflags & EDDY__P_HEADERS)
    return stopped(c) ? -1 : extra(c, len, 431); /* a trailer */
  if (!(c->pflags & EDDY__P_FIELD)) {
    if (header_new(e) == NULL)
      return fail(c, 431);
    c->pflags &= ~EDDY__P_VALUE;
  }
  return span(c, &header_last(e)->name, EDDY__P_FIELD, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  eddy__http_conn_t *c = pconn(p);
  if (c->pflags & EDDY__P_HEADERS)
    return stopped(c) ? -1 : extra(c, len, 431);
  c->pflags &= ~EDDY__P_FIELD; /* the name is complete */
  return span(c, &header_last(c->parsing)->value, EDDY__P_VALUE, at, len);
}

static int token_is(const char *s, size_t n, const char *lit) {
  return strlen(lit) == n && eddy__http_ieq(s, lit, n);
}

/* The last coding of a Transfer-Encoding list decides whether the body is
 * chunked; anything else leaves the body's length unknown. */
static int last_coding_chunked(const char *v, size_t n) {
  size_t start = n;
  while (start > 0 && v[start - 1] != ',')
    start--;
  while (start < n && (v[start] == ' ' || v[start] == '\t'))
    start++;
  return token_is(v + start, n - start, "chunked");
}

static int parse_length(const char *v, size_t n, uint64_t *out) {
  uint64_t x = 0;
  if (n == 0 || n > 19)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  *out = x;
  return 0;
}

/* Notes the headers that frame the body or change how we answer. */
static int header_note(eddy__http_conn_t *c, const char *name, size_t nlen,
                       const char *v, size_t vlen) {
  uint64_t n;
  if (nlen != 4 && nlen != 6 && nlen != 14 && nlen != 17)
    return 0; /* not one of ours: most headers stop here */
  if (token_is(name, nlen, "content-length")) {
    if (parse_length(v, vlen, &n) != 0 ||
        ((c->pflags & EDDY__P_CL) && n != c->cl))
      return fail(c, 400);
    c->pflags |= EDDY__P_CL;
    c->cl = n;
  } else if (token_is(name, nlen, "transfer-encoding")) {
    c->pflags |= EDDY__P_TE;
    c->pflags &= ~EDDY__P_TE_CHUNKED;
    if (last_coding_chunked(v, vlen))
      c->pflags |= EDDY__P_TE_CHUNKED;
  } else if (token_is(name, nlen, "host")) {
    if (c->pflags & EDDY__P_HOST)
      return fail(c, 400); /* RFC 9112 3.2: exactly one Host */
    c->pflags |= EDDY__P_HOST;
  } else if (token_is(name, nlen, "expect") &&
             token_is(v, vlen, "100-continue")) {
    c->pflags |= EDDY__P_EXPECT;
  }
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  eddy__http_conn_t *c = pconn(p);
  if (c->pflags & EDDY__P_HEADERS)
    return stopped(c) ? -1 : 0;
  eddy_http_header_t *h = header_last(c->parsing);
  /* llhttp 8.1 takes ": value" as a header with an empty name. */
  if (h->name.len == 0)
    return fail(c, 400);
  c->pflags &= ~EDDY__P_FIELD;
  if (!(c->pflags & EDDY__P_VALUE)) { /* an empty value */
    h->value.base =
        (const char *)(uintptr_t)((uintptr_t)h->name.base + h->name.len + 1);
    h->value.len = 0;
  }
  c->pflags &= ~EDDY__P_VALUE;
  /* llhttp keeps trailing spaces in the value; the field value has none. */
  const char *v = resolve(c, h->value);
  while (h->value.len > 0 &&
         (v[h->value.len - 1] == ' ' || v[h->value.len - 1] == '\t'))
    h->value.len--;
  return header_note(c, resolve(c, h->name), h->name.len, v, h->value.len);
}

/* ---- Head complete ------------------------------------------------------- */

/* The length of the head, up to its empty line, if every CR in it is
 * followed by LF and no line after a CRLF starts with a space or tab
 * (obs-fold); else 0.  (A bare LF that llhttp accepts ends the request
 * line only: it rejects one inside a header, and a fold after it.) */
static size_t head_scan(const char *head, const char *end) {
  const char *p = head;
  for (;;) {
    const char *cr = memchr(p, '\r', (size_t)(end - p));
    if (cr == NULL || end - cr < 3 || cr[1] != '\n')
      return 0; /* bare CR, or no end in sight */
    p = cr + 2;
    if (p[0] == '\r')
      return p[1] == '\n' ? (size_t)(p + 2 - head) : 0;
    if (p[0] == ' ' || p[0] == '\t')
      return 0;
  }
}

static const eddy_http_method methods[] = {
    [HTTP_DELETE] = EDDY_HTTP_DELETE,   [HTTP_GET] = EDDY_HTTP_GET,
    [HTTP_HEAD] = EDDY_HTTP_HEAD,       [HTTP_POST] = EDDY_HTTP_POST,
    [HTTP_PUT] = EDDY_HTTP_PUT,         [HTTP_CONNECT] = EDDY_HTTP_CONNECT,
    [HTTP_OPTIONS] = EDDY_HTTP_OPTIONS, [HTTP_TRACE] = EDDY_HTTP_TRACE,
    [HTTP_PATCH] = EDDY_HTTP_PATCH,
};

/* llhttp's methods we name; the rest are EDDY_HTTP_OTHER (0). */
static eddy_http_method method_of(uint8_t m) {
  return m < sizeof methods / sizeof methods[0] ? methods[m] : EDDY_HTTP_OTHER;
}

/* path and query from the target; an absolute-form target
 * ("http://host/p?q") has its path after the authority. */
static void split_target(eddy_http_req_t *r) {
  const char *t = r->target.base, *end = t + r->target.len;
  const char *path = t;
  if (r->target.len > 0 && t[0] != '/' && t[0] != '*') {
    const char *s = memmem(t, r->target.len, "://", 3);
    if (s != NULL) {
      path = memchr(s + 3, '/', (size_t)(end - (s + 3)));
      if (path == NULL)
        path = end;
    }
  }
  const char *q = path; /* targets are short: a loop beats a call */
  while (q < end && *q != '?')
    q++;
  if (q == end)
    q = NULL;
  r->path.base = path;
  r->path.len = (size_t)((q != NULL ? q : end) - path);
  r->query.base = q != NULL ? q + 1 : end;
  r->query.len = (size_t)(end - r->query.base);
}

/* Offsets become pointers; the request's fields are filled in. */
static void head_resolve(eddy__http_conn_t *c, eddy__http_exch_t *e) {
  eddy_http_req_t *r = &e->req;
  r->method_name.base = resolve(c, r->method_name);
  r->target.base = resolve(c, r->target);
  for (size_t i = 0; i < r->nheaders; i++) {
    e->hdrs[i].name.base = resolve(c, e->hdrs[i].name);
    e->hdrs[i].value.base = resolve(c, e->hdrs[i].value);
  }
  r->headers = e->hdrs;
  r->method = method_of(c->parser.method);
  r->version_major = c->parser.http_major;
  r->version_minor = c->parser.http_minor;
  r->chunked = (c->pflags & EDDY__P_TE) != 0;
  r->content_length = (c->pflags & EDDY__P_CL) ? (int64_t)c->cl : -1;
  split_target(r);
}

/* 0, or the status to answer instead of handing the request out. */
static int head_check(eddy__http_conn_t *c, const eddy_http_req_t *r,
                      size_t head_len) {
  if (r->version_major != 1 || r->version_minor > 1)
    return 505;
  if (head_len == 0)
    return 400; /* bare CR or obs-fold */
  if ((c->pflags & EDDY__P_TE) &&
      ((c->pflags & EDDY__P_CL) || !(c->pflags & EDDY__P_TE_CHUNKED)))
    return 400;
  if (r->version_minor == 1 && !(c->pflags & EDDY__P_HOST))
    return 400;
  if ((c->pflags & EDDY__P_CL) && c->cl > c->srv->opts.max_body_size)
    return 413;
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  eddy__http_conn_t *c = pconn(p);
  eddy__http_exch_t *e = c->parsing;
  size_t head_len = head_scan(c->head_base, c->region_end);
  c->pflags |= EDDY__P_HEADERS;
  head_resolve(c, e);
  int status = head_check(c, &e->req, head_len);
  if (status != 0)
    return fail(c, status);

  eddy__http_timer_stop(c);
  e->head = *c->region;
  e->head.base = (char *)c->head_base;
  e->head.len = head_len;
  eddy_slice_retain(&e->head);
  if (llhttp_should_keep_alive(p) && e->req.method != EDDY_HTTP_CONNECT)
    e->flags |= EDDY__X_KEEP_ALIVE;
  else
    c->flags |= EDDY__C_NO_MORE;
  if ((c->pflags & EDDY__P_EXPECT) && (e->req.chunked || c->cl > 0))
    e->flags |= EDDY__X_EXPECT;
  e->flags |= EDDY__X_HANDED | EDDY__X_BUSY;
  eddy__http_queue_push(c, e);
  c->srv->stats.requests++;
  c->srv->stats.active_requests++;
  c->srv->on_request(&e->req, &e->res);
  e->flags &= ~EDDY__X_BUSY;
  eddy__http_exch_maybe_release(e);
  return 0;
}

/* ---- Body ---------------------------------------------------------------- */

static int on_body(llhttp_t *p, const char *at, size_t len) {
  eddy__http_conn_t *c = pconn(p);
  if (stopped(c))
    return -1;
  eddy__http_exch_t *e = c->parsing;
  e->body_bytes += len;
  if (e->body_bytes > c->srv->opts.max_body_size)
    return fail(c, 413);
  return eddy__http_body(e, at, len) == 0 ? 0 : fail(c, 503);
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t len) {
  eddy__http_conn_t *c = pconn(p);
  return stopped(c) ? -1 : extra(c, len, 400);
}

static int on_message_complete(llhttp_t *p) {
  eddy__http_conn_t *c = pconn(p);
  eddy__http_message_done(c);
  /* After a request that ends the connection, parse nothing more. */
  return (c->flags & EDDY__C_NO_MORE) ? HPE_PAUSED : 0;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
    .on_message_complete = on_message_complete,
};

void eddy__http_parser_init(eddy__http_conn_t *c) {
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
}

/* ---- The driver ---------------------------------------------------------- */

/* Runs llhttp over [at, at + len) of region until the bytes are used up,
 * a request is rejected, or a request ended the connection. */
static void execute(eddy__http_conn_t *c, const eddy_slice_t *region,
                    const char *at, size_t len) {
  const char *end = at + len;
  c->region = region;
  c->region_end = end;
  while (at < end) {
    llhttp_errno_t err = llhttp_execute(&c->parser, at, (size_t)(end - at));
    if (err == HPE_OK || (c->flags & EDDY__C_DISCARD))
      break;
    if (err == HPE_PAUSED_UPGRADE && !(c->flags & EDDY__C_NO_MORE)) {
      /* Upgrades are not supported: the request was answered as a plain
       * one, and requests go on after it. */
      at = llhttp_get_error_pos(&c->parser);
      llhttp_resume_after_upgrade(&c->parser);
      continue;
    }
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE)
      eddy__http_stop_parsing(c);
    else
      eddy__http_reject(c, c->reject != 0 ? c->reject : 400);
    break;
  }
  c->region = NULL;
}

static void partial_drop(eddy__http_conn_t *c) {
  eddy_slice_release(&c->partial);
  c->partial = (eddy_slice_t){0};
  c->partial_len = 0;
}

/* After a region: a head still unfinished moves to conn->partial (unless
 * it is there already), where the next reads are appended to it. */
static void keep_head(eddy__http_conn_t *c, const char *end) {
  if ((c->flags & EDDY__C_DISCARD) || c->parsing == NULL ||
      (c->pflags & EDDY__P_HEADERS) || !(c->pflags & EDDY__P_BASE)) {
    partial_drop(c);
    return;
  }
  size_t have = (size_t)(end - c->head_base);
  if (eddy__queue_empty(&c->tnode))
    eddy__http_timer_keep(c, &c->srv->head_list);
  if (c->partial.owner != NULL && c->head_base == c->partial.base) {
    c->partial_len = have;
    return;
  }
  size_t cap = have * 2 < 1024 ? 1024 : have * 2;
  if (cap > c->srv->opts.max_header_size)
    cap = c->srv->opts.max_header_size;
  eddy_slice_t s;
  if (have > cap || eddy_slice_alloc(c->srv->loop, cap, &s) != 0) {
    eddy__http_reject(c, have > cap ? too_big(c, end) : 503);
    return;
  }
  memcpy(s.base, c->head_base, have);
  partial_drop(c);
  c->partial = s;
  c->partial_len = have;
  c->head_base = s.base;
}

/* Room in conn->partial for up to want more bytes, growing it up to the
 * head limit; 0 when the head is over the limit (then it is rejected). */
static size_t partial_room(eddy__http_conn_t *c, size_t want) {
  size_t room = c->partial.len - c->partial_len;
  size_t max = c->srv->opts.max_header_size;
  if (room == 0 && c->partial.len < max) {
    size_t cap = c->partial.len * 2 < max ? c->partial.len * 2 : max;
    eddy_slice_t s;
    if (eddy_slice_alloc(c->srv->loop, cap, &s) != 0) {
      eddy__http_reject(c, 503);
      return 0;
    }
    memcpy(s.base, c->partial.base, c->partial_len);
    eddy_slice_release(&c->partial);
    c->partial = s;
    c->head_base = s.base;
    room = cap - c->partial_len;
  }
  if (room == 0)
    eddy__http_reject(c, too_big(c, c->partial.base + c->partial_len));
  return room < want ? room : want;
}

void eddy__http_parse(eddy__http_conn_t *c, const eddy_slice_t *buf,
                      size_t len) {
  const char *p = buf->base;
  while (len > 0 && !(c->flags & EDDY__C_DISCARD)) {
    if (c->partial.owner == NULL) {
      execute(c, buf, p, len);
      keep_head(c, p + len);
      return;
    }
    size_t take = partial_room(c, len);
    if (take == 0)
      return;
    char *dst = c->partial.base + c->partial_len;
    memcpy(dst, p, take);
    c->partial_len += take;
    eddy_slice_t region = c->partial;
    execute(c, &region, dst, take);
    keep_head(c, dst + take);
    p += take;
    len -= take;
  }
}
