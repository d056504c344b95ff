/* The response API (status, headers, write, end), how a response head is
 * framed, and the request's small API (headers, reading the body).
 *
 * Header lines the application sets are staged in the exchange and copied
 * out when the head is produced, on the first write or at the end, because
 * the status line that goes before them may still change until then.  The
 * head is then: status line, staged lines, the server's cached Date line,
 * framing (Content-Length or chunked), Connection when needed. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "net/http/internal.h"

/* ---- Status lines and dates ---------------------------------------------- */

static const struct {
  int code;
  const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {426, "Upgrade Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *eddy_http_status_reason(int status) {
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].code == status)
      return reasons[i].reason;
  return "Unknown";
}

static const char ok_line[] = "HTTP/1.1 200 OK\r\n";

/* "HTTP/1.1 404 Not Found\r\n" into buf (at least 64 bytes); its length. */
static size_t status_line(int status, char *buf) {
  const char *reason = eddy_http_status_reason(status);
  size_t rlen = strlen(reason);
  memcpy(buf, "HTTP/1.1 ", 9);
  buf[9] = (char)('0' + status / 100);
  buf[10] = (char)('0' + status / 10 % 10);
  buf[11] = (char)('0' + status % 10);
  buf[12] = ' ';
  memcpy(buf + 13, reason, rlen);
  memcpy(buf + 13 + rlen, "\r\n", 2);
  return 15 + rlen;
}

/* Locale-free, as IMF-fixdate requires: "Date: Sun, 06 Nov 1994 08:49:37
 * GMT\r\n". */
void eddy__http_date_format(char line[EDDY__HTTP_DATE_LINE + 1], int64_t t) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  struct tm tm;
  time_t tt = (time_t)t;
  gmtime_r(&tt, &tm);
  char *p = line;
  memcpy(p, "Date: ", 6);
  memcpy(p + 6, days + 3 * tm.tm_wday, 3);
  p[9] = ',';
  p[10] = ' ';
  p[11] = (char)('0' + tm.tm_mday / 10);
  p[12] = (char)('0' + tm.tm_mday % 10);
  p[13] = ' ';
  memcpy(p + 14, months + 3 * tm.tm_mon, 3);
  p[17] = ' ';
  int y = tm.tm_year + 1900;
  for (int i = 3; i >= 0; i--, y /= 10)
    p[18 + i] = (char)('0' + y % 10);
  p[22] = ' ';
  int hms[3] = {tm.tm_hour, tm.tm_min, tm.tm_sec};
  for (int i = 0; i < 3; i++) {
    p[23 + 3 * i] = (char)('0' + hms[i] / 10);
    p[24 + 3 * i] = (char)('0' + hms[i] % 10);
    p[25 + 3 * i] = i < 2 ? ':' : ' ';
  }
  memcpy(p + 32, "GMT\r\n", 5);
  p[EDDY__HTTP_DATE_LINE] = '\0';
}

static size_t put_u64(char *buf, uint64_t v) {
  if (v < 100) { /* the common small body */
    buf[0] = (char)('0' + v / 10);
    buf[v >= 10] = (char)('0' + v % 10);
    return 1 + (v >= 10);
  }
  size_t n = 1;
  for (uint64_t x = v; x >= 10; x /= 10)
    n++;
  for (size_t i = n; i > 0; i--, v /= 10)
    buf[i - 1] = (char)('0' + v % 10);
  return n;
}

/* ---- The head ------------------------------------------------------------ */

/* The last response the connection sends: it says Connection: close. */
static int last_response(const eddy__http_exch_t *e) {
  const eddy__http_conn_t *c = e->conn;
  return (c->flags & EDDY__C_NO_MORE) && e->next == NULL &&
         (c->parsing == NULL || c->parsing == e);
}

/* Without 100 Continue sent, the client may or may not send the body it
 * announced: the connection cannot be trusted for another request. */
static int expect_unread(const eddy__http_exch_t *e) {
  return (e->flags & (EDDY__X_EXPECT | EDDY__X_CONTINUED | EDDY__X_MSG_DONE)) ==
         EDDY__X_EXPECT;
}

/* Decides framing and keep-alive; writes the lines the server adds into
 * extra (at most HEAD_EXTRA bytes); returns their length. */
#define HEAD_EXTRA 96
static size_t head_framing(eddy__http_exch_t *e, int is_end, size_t end_len,
                           char *extra) {
  int st = e->status, minor = e->req.version_minor;
  int ka = (e->flags & EDDY__X_KEEP_ALIVE) &&
           !(e->flags & EDDY__X_USER_CLOSE) && !expect_unread(e) &&
           !last_response(e);
  size_t n = 0;
  if (e->req.method == EDDY_HTTP_HEAD || st == 204 || st == 304)
    e->flags |= EDDY__X_NO_BODY;
  if (st == 204 || st == 304 || (e->flags & EDDY__X_HAS_CL)) {
    /* framed already, or never a body */
  } else if (is_end) {
    memcpy(extra, "Content-Length: ", 16);
    n = 16 + put_u64(extra + 16, end_len);
    memcpy(extra + n, "\r\n", 2);
    n += 2;
  } else if (minor >= 1) {
    e->flags |= EDDY__X_CHUNKED;
    memcpy(extra, "Transfer-Encoding: chunked\r\n", 28);
    n = 28;
  } else {
    ka = 0; /* HTTP/1.0 without a length: the close ends the body */
  }
  if (!ka) {
    e->flags |= EDDY__X_CLOSE;
    memcpy(extra + n, "Connection: close\r\n", 19);
    n += 19;
  } else if (minor == 0) {
    memcpy(extra + n, "Connection: keep-alive\r\n", 24);
    n += 24;
  }
  return n;
}

/* Bodies up to this size go out in the same reservation as the head. */
#define HEAD_WITH_BODY 2048

/* Writes the head, and with is_end a small body right after it (then
 * *body_done is set): one reservation, no intermediate copies. */
static int head_build(eddy__http_exch_t *e, int is_end, const void *body,
                      size_t len, int *body_done) {
  size_t max = 64 + e->stage_len + EDDY__HTTP_DATE_LINE + HEAD_EXTRA + 2;
  int with_body = is_end && len <= HEAD_WITH_BODY;
  char *p0 = eddy__http_reserve(e, max + (with_body ? len : 0));
  if (p0 == NULL)
    return EDDY_ENOMEM;
  char *p = p0;
  if (e->status == 200) {
    memcpy(p, ok_line, sizeof ok_line - 1);
    p += sizeof ok_line - 1;
  } else {
    p += status_line(e->status, p);
  }
  memcpy(p, e->stage, e->stage_len);
  p += e->stage_len;
  if (!(e->flags & EDDY__X_HAS_DATE)) {
    memcpy(p, e->srv->date_line, EDDY__HTTP_DATE_LINE);
    p += EDDY__HTTP_DATE_LINE;
  }
  p += head_framing(e, is_end, len, p);
  *p++ = '\r';
  *p++ = '\n';
  e->flags |= EDDY__X_HEAD_SENT;
  if (with_body &&
      !(e->flags & (EDDY__X_NO_BODY | EDDY__X_CHUNKED | EDDY__X_HAS_CL))) {
    if (len > 0)
      memcpy(p, body, len);
    p += len;
    *body_done = 1;
  }
  eddy__http_unreserve(e, (size_t)(p0 + max + (with_body ? len : 0) - p));
  return 0;
}

void eddy__http_error_response(eddy__http_exch_t *e, int status) {
  char buf[160];
  size_t n = status_line(status, buf);
  static const char tail[] = "Content-Length: 0\r\nConnection: close\r\n\r\n";
  memcpy(buf + n, e->srv->date_line, EDDY__HTTP_DATE_LINE);
  n += EDDY__HTTP_DATE_LINE;
  memcpy(buf + n, tail, sizeof tail - 1);
  n += sizeof tail - 1;
  e->stage_len = 0;
  e->flags |= EDDY__X_HEAD_SENT | EDDY__X_ENDED | EDDY__X_CLOSE;
  eddy__http_append(e, buf, n);
  eddy__http_want_flush(e->conn);
}

void eddy__http_send_continue(eddy__http_exch_t *e) {
  static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
  e->flags |= EDDY__X_CONTINUED;
  eddy__http_append(e, line, sizeof line - 1);
  eddy__http_want_flush(e->conn);
}

/* ---- Status and headers -------------------------------------------------- */

/* The response can still change its head: 0, or why not. */
static int head_open(const eddy__http_exch_t *e) {
  EDDY__MISUSE(e->flags & EDDY__X_USER_DONE, EDDY_EINVAL);
  return (e->flags & (EDDY__X_HEAD_SENT | EDDY__X_ENDED)) ? EDDY_EBUSY : 0;
}

int eddy_http_set_status(eddy_http_res_t *res, int status) {
  eddy__http_exch_t *e = eddy__http_res_exch(res);
  int err = head_open(e);
  if (err != 0)
    return err;
  if (status < 200 || status > 999)
    return EDDY_EINVAL;
  e->status = status;
  return 0;
}

/* What a header may hold (RFC 9110 5.1, 5.5): a name is a token; a value
 * is visible characters, spaces, tabs and obs-text, never CR, LF or NUL
 * (that would let one value forge another header). */
enum { NAME_OK = 1, VALUE_OK = 2 };
/* clang-format off */
static const unsigned char char_class[256] = {
    ['\t'] = VALUE_OK, [' '] = VALUE_OK,
    ['!'] = 3, ['"'] = VALUE_OK, ['#'] = 3, ['$'] = 3, ['%'] = 3, ['&'] = 3,
    ['\''] = 3, ['('] = VALUE_OK, [')'] = VALUE_OK, ['*'] = 3, ['+'] = 3,
    [','] = VALUE_OK, ['-'] = 3, ['.'] = 3, ['/'] = VALUE_OK,
    ['0' ... '9'] = 3, [':' ... '@'] = VALUE_OK, ['A' ... 'Z'] = 3,
    ['['] = VALUE_OK, ['\\'] = VALUE_OK, [']'] = VALUE_OK, ['^'] = 3,
    ['_'] = 3, ['`'] = 3, ['a' ... 'z'] = 3, ['{'] = VALUE_OK, ['|'] = 3,
    ['}'] = VALUE_OK, ['~'] = 3, [0x80 ... 0xff] = VALUE_OK,
};
/* clang-format on */

/* No early exit: header strings are short, and this runs for every
 * header of every response. */
static int valid_text(const char *s, size_t n, unsigned char want) {
  const unsigned char *u = (const unsigned char *)s;
  unsigned char all = want;
  for (size_t i = 0; i < n; i++)
    all &= char_class[u[i]];
  return all == want;
}

/* A value has no control character but tab.  Eight bytes at a time: any
 * byte below 0x20 or equal to 0x7f sends the word to the exact check
 * ((x - 0x20..) & ~x & 0x80.. is non-zero iff some byte is below 0x20). */
static int valid_value(const char *s, size_t n) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x, del;
    memcpy(&x, s + i, 8);
    del = x ^ (ones * 0x7f);
    if (((x - ones * 0x20) & ~x & highs) | ((del - ones) & ~del & highs))
      break;
  }
  return valid_text(s + i, n - i, VALUE_OK);
}

/* Headers that change how the server frames the response: 0 to stage the
 * line, 1 to drop it (the server writes its own), or an error. */
static int header_special(eddy__http_exch_t *e, const char *name, size_t nl,
                          const char *value, size_t vl) {
  switch (nl) {
  case 4:
    if (eddy__http_ieq(name, "date", 4))
      e->flags |= EDDY__X_HAS_DATE;
    return 0;
  case 10:
    if (!eddy__http_ieq(name, "connection", 10))
      return 0;
    /* The server writes Connection itself; "close" is what it honours. */
    for (size_t i = 0; i + 5 <= vl; i++)
      if (strncasecmp(value + i, "close", 5) == 0)
        e->flags |= EDDY__X_USER_CLOSE;
    return 1;
  case 14:
    break;
  case 17:
    return eddy__http_ieq(name, "transfer-encoding", 17) ? EDDY_EINVAL : 0;
  default:
    return 0;
  }
  if (eddy__http_ieq(name, "content-length", 14)) {
    uint64_t v = 0;
    if (vl == 0 || vl > 19 || (e->flags & EDDY__X_HAS_CL))
      return EDDY_EINVAL;
    for (size_t i = 0; i < vl; i++) {
      if (value[i] < '0' || value[i] > '9')
        return EDDY_EINVAL;
      v = v * 10 + (uint64_t)(value[i] - '0');
    }
    e->flags |= EDDY__X_HAS_CL;
    e->cl_left = v;
  }
  return 0;
}

static int stage_grow(eddy__http_exch_t *e, size_t need) {
  size_t cap = e->stage_cap * 2 > need ? e->stage_cap * 2 : need;
  char *p = e->stage == e->stage_inline ? malloc(cap) : realloc(e->stage, cap);
  if (p == NULL)
    return EDDY_ENOMEM;
  if (e->stage == e->stage_inline)
    memcpy(p, e->stage, e->stage_len);
  e->stage = p;
  e->stage_cap = cap;
  return 0;
}

int eddy_http_set_header_n(eddy_http_res_t *res, const char *name, size_t nl,
                           const char *value, size_t vl) {
  eddy__http_exch_t *e = eddy__http_res_exch(res);
  int err = head_open(e);
  if (err != 0)
    return err;
  if (name == NULL || nl == 0 || (value == NULL && vl > 0) ||
      !valid_text(name, nl, NAME_OK) || !valid_value(value, vl))
    return EDDY_EINVAL;
  err = header_special(e, name, nl, value, vl);
  if (err != 0)
    return err < 0 ? err : 0;
  size_t need = e->stage_len + nl + vl + 4;
  if (need > e->stage_cap && (err = stage_grow(e, need)) != 0)
    return err;
  char *p = e->stage + e->stage_len;
  memcpy(p, name, nl);
  memcpy(p + nl, ": ", 2);
  if (vl > 0)
    memcpy(p + nl + 2, value, vl);
  memcpy(p + nl + 2 + vl, "\r\n", 2);
  e->stage_len = need;
  return 0;
}

int eddy_http_set_header(eddy_http_res_t *res, const char *name,
                         const char *value) {
  if (name == NULL || value == NULL)
    return EDDY_EINVAL;
  return eddy_http_set_header_n(res, name, strlen(name), value, strlen(value));
}

int eddy_http_headers_sent(const eddy_http_res_t *res) {
  return (eddy__http_res_exch(res)->flags & EDDY__X_HEAD_SENT) != 0;
}

void eddy_http_res_set_drain_cb(eddy_http_res_t *res, eddy_http_drain_cb cb) {
  eddy__http_res_exch(res)->drain_cb = cb;
}

void eddy_http_res_set_abort_cb(eddy_http_res_t *res, eddy_http_abort_cb cb) {
  eddy__http_res_exch(res)->abort_cb = cb;
}

/* ---- Body ---------------------------------------------------------------- */

/* 0 if the response can take body bytes now, or the error to return. */
static int res_writable(const eddy__http_exch_t *e) {
  EDDY__MISUSE(e->flags & EDDY__X_USER_DONE, EDDY_EINVAL);
  if (e->conn == NULL)
    return EDDY_ECONNRESET;
  if (e->flags & EDDY__X_ENDED)
    return EDDY_ECANCELED; /* the server answered in its place */
  return 0;
}

static int body_bytes(eddy__http_exch_t *e, const void *data, size_t len) {
  if (len == 0 || (e->flags & EDDY__X_NO_BODY))
    return 0;
  if (e->flags & EDDY__X_HAS_CL) {
    if (len > e->cl_left)
      return EDDY_EINVAL;
    e->cl_left -= len;
  }
  if (!(e->flags & EDDY__X_CHUNKED))
    return eddy__http_append(e, data, len);
  static const char hex[] = "0123456789abcdef";
  char size[20];
  size_t n = 0;
  for (int shift = 60; shift >= 0; shift -= 4)
    if (n > 0 || (len >> shift) != 0 || shift == 0)
      size[n++] = hex[(len >> shift) & 15];
  char *p = eddy__http_reserve(e, n + 2 + len + 2);
  if (p == NULL)
    return EDDY_ENOMEM;
  memcpy(p, size, n);
  memcpy(p + n, "\r\n", 2);
  memcpy(p + n + 2, data, len);
  memcpy(p + n + 2 + len, "\r\n", 2);
  return 0;
}

int eddy_http_write(eddy_http_res_t *res, const void *data, size_t len) {
  eddy__http_exch_t *e = eddy__http_res_exch(res);
  int err = res_writable(e);
  if (err != 0)
    return err;
  if (data == NULL && len > 0)
    return EDDY_EINVAL;
  int unused;
  if (!(e->flags & EDDY__X_HEAD_SENT) &&
      (err = head_build(e, 0, NULL, 0, &unused)) != 0)
    return err;
  if ((err = body_bytes(e, data, len)) != 0)
    return err;
  eddy__http_want_flush(e->conn);
  if (eddy__http_queued(e) >= e->conn->s.stream.high_water_mark) {
    e->flags |= EDDY__X_NEED_DRAIN;
    return EDDY_STREAM_FULL;
  }
  return 0;
}

/* Produces the rest of the response; the exchange stays the caller's. */
static int res_finish(eddy__http_exch_t *e, const void *data, size_t len) {
  int err = 0, body_done = 0;
  if (!(e->flags & EDDY__X_HEAD_SENT))
    err = head_build(e, 1, data, len, &body_done);
  if (err == 0 && !body_done)
    err = body_bytes(e, data, len);
  if (err == 0 &&
      (e->flags & (EDDY__X_CHUNKED | EDDY__X_NO_BODY)) == EDDY__X_CHUNKED)
    err = eddy__http_append(e, "0\r\n\r\n", 5);
  /* A body shorter than its Content-Length cannot be followed by another
   * response on this connection. */
  if (err != 0 || ((e->flags & EDDY__X_HAS_CL) && e->cl_left > 0 &&
                   !(e->flags & EDDY__X_NO_BODY)))
    e->flags |= EDDY__X_CLOSE;
  e->flags |= EDDY__X_ENDED;
  return err;
}

int eddy_http_end(eddy_http_res_t *res, const void *data, size_t len) {
  eddy__http_exch_t *e = eddy__http_res_exch(res);
  int err = res_writable(e);
  if (err == EDDY_EINVAL || (data == NULL && len > 0))
    return EDDY_EINVAL;
  e->flags |= EDDY__X_USER_DONE;
  e->srv->stats.active_requests--;
  eddy__http_drop_held(e); /* nobody will read it now */
  eddy__http_conn_t *c = e->conn;
  if (err != 0) {
    eddy__http_exch_maybe_release(e);
    return err;
  }
  err = res_finish(e, data, len);
  /* May release e: it is not touched after this. */
  eddy__http_queue_advance(c);
  eddy__http_want_flush(c);
  return err;
}

int eddy_http_send_file(eddy_http_res_t *res, int fd, int64_t offset,
                        uint64_t len, eddy_http_file_cb done, void *arg) {
  eddy__http_exch_t *e = eddy__http_res_exch(res);
  int err = res_writable(e);
  if (err == EDDY_EINVAL || fd < 0 || offset < 0)
    return EDDY_EINVAL;
  if (e->flags & EDDY__X_HEAD_SENT)
    return err != 0 ? err : EDDY_EBUSY;
  if (err == 0 && (e->flags & EDDY__X_HAS_CL) && e->cl_left != len)
    return EDDY_EINVAL;
  if (err == 0 && !(e->flags & EDDY__X_HAS_CL)) {
    char num[24];
    err = eddy_http_set_header_n(res, "Content-Length", 14, num,
                                 put_u64(num, len));
    if (err != 0)
      return err;
  }
  e->flags |= EDDY__X_USER_DONE;
  e->srv->stats.active_requests--;
  eddy__http_drop_held(e);
  eddy__http_conn_t *c = e->conn;
  if (err != 0) {
    eddy__http_exch_maybe_release(e);
    return err;
  }
  int unused;
  err = head_build(e, 0, NULL, 0, &unused);
  if (err == 0) {
    uint64_t body = (e->flags & EDDY__X_NO_BODY) ? 0 : len;
    err = eddy__http_append_file(e, fd, offset, body, done, arg);
    e->cl_left -= body;
  }
  if (err != 0)
    e->flags |= EDDY__X_CLOSE;
  e->flags |= EDDY__X_ENDED;
  eddy__http_queue_advance(c); /* may release e */
  eddy__http_want_flush(c);
  return err;
}

/* ---- The request --------------------------------------------------------- */

const eddy_http_str_t *eddy_http_req_header(const eddy_http_req_t *req,
                                            const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < req->nheaders; i++)
    if (req->headers[i].name.len == n &&
        strncasecmp(req->headers[i].name.base, name, n) == 0)
      return &req->headers[i].value;
  return NULL;
}

int eddy_http_req_read_start(eddy_http_req_t *req, eddy_http_body_cb cb) {
  eddy__http_exch_t *e = eddy__http_req_exch(req);
  EDDY__MISUSE(e->flags & EDDY__X_USER_DONE, EDDY_EINVAL);
  if (cb == NULL)
    return EDDY_EINVAL;
  if (e->conn == NULL)
    return EDDY_ECONNRESET;
  if (e->flags & EDDY__X_ENDED)
    return e->body_err != 0 ? e->body_err : EDDY_ECANCELED;
  e->body_cb = cb;
  e->flags |= EDDY__X_READING;
  if ((e->flags & (EDDY__X_EXPECT | EDDY__X_CONTINUED | EDDY__X_HEAD_SENT |
                   EDDY__X_MSG_DONE)) == EDDY__X_EXPECT)
    eddy__http_send_continue(e);
  /* What is held, the end, and reading again: from the next tick. */
  eddy__http_schedule(e->conn);
  return 0;
}

int eddy_http_req_read_stop(eddy_http_req_t *req) {
  eddy__http_exch_t *e = eddy__http_req_exch(req);
  EDDY__MISUSE(e->flags & EDDY__X_USER_DONE, EDDY_EINVAL);
  e->flags &= ~EDDY__X_READING;
  return 0;
}
