/* Static file serving: include/eddy/http_static.h has the contract,
 * docs/static.md the reasons.
 *
 * A request's way: the method, then the path after the prefix is decoded
 * and checked segment by segment (the jail's first wall: nothing that
 * could name a file outside the root reaches the file system), then the
 * open-file cache, and on a miss the open: eddy_fs_open, eddy_fs_readlink
 * of /proc/self/fd/N (the jail's second wall: the real path of what was
 * opened, symlinks resolved by the kernel, must lie under the root's real
 * path), eddy_fs_fstat.  A directory goes round once more for its index.
 * The answer is then built from the entry: conditionals, range, head, and
 * the body by eddy_http_send_file, which holds a reference to the entry
 * until the bytes left.
 *
 * The fs API has no openat2(RESOLVE_BENEATH), which would make the open
 * itself refuse to leave the root; the check after the open gives the same
 * guarantee (the descriptor is what is served, and it is checked), at the
 * price of a readlink per open.  Opens are rare with the cache. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/http/internal.h"

#define STATIC_PATH_MAX 1024
#define ETAG_MAX 40
#define LASTMOD_MAX 32 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* One opened file: shared by the cache and the responses sending it. */
typedef struct entry_s {
  eddy_queue_t lru;      /* st->lru, most recent first, while cached */
  struct entry_s *chain; /* hash bucket */
  unsigned refs;         /* the cache's (while cached) and each sender's */
  int cached;
  int revalidating; /* one request is opening the file again */
  int fd;
  uint64_t size;
  int64_t mtime;
  uint64_t validated; /* loop time of the open */
  const char *type;
  struct eddy_http_static_s *st;
  char etag[ETAG_MAX];
  char lastmod[LASTMOD_MAX];
  size_t pathlen;
  char path[]; /* the request's, relative to the root: the cache key */
} entry_t;

struct eddy_http_static_s {
  eddy_loop_t *loop;
  char *root; /* real path, no trailing slash */
  size_t rootlen;
  char *prefix;
  size_t prefixlen;
  char *index;
  unsigned max_entries;
  uint64_t valid_ms;
  entry_t **buckets;
  unsigned nbuckets;
  eddy_queue_t lru;
  eddy_http_static_stats_t stats;
  unsigned inflight; /* opens under way and responses sending a file */
  int closed;
};

/* A request on its way through the open. */
typedef struct {
  eddy_http_static_t *st;
  eddy_http_req_t *req;
  eddy_http_res_t *res;
  eddy_fs_t fs;
  int fd;
  int tried_index;
  entry_t *stale; /* the cached entry this open revalidates, or NULL */
  size_t keylen;  /* path[0..keylen) is the request's (before an index) */
  size_t pathlen;
  char path[STATIC_PATH_MAX + 32]; /* relative; room for the index */
  char full[STATIC_PATH_MAX + 64];
} opening_t;

static void static_unref(eddy_http_static_t *st);

/* ---- Content types --------------------------------------------------------
 */

static const struct {
  const char *ext;
  const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
};

static const char *content_type(const char *path) {
  const char *dot = strrchr(path, '.');
  const char *slash = strrchr(path, '/');
  if (dot != NULL && (slash == NULL || dot > slash))
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
      if (strcasecmp(dot + 1, types[i].ext) == 0)
        return types[i].type;
  return "application/octet-stream";
}

/* ---- The path: decoding and the jail's first wall -------------------------
 */

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The request path after the prefix, decoded into out as segments joined by
 * '/', without ".", empty segments or a leading slash: 0, or the status to
 * answer.  A decoded '/' or '\' or NUL never becomes part of a name: a
 * client that encodes them is looking for a way out. */
static int decode_path(const char *p, size_t n, char *out, size_t cap,
                       size_t *outlen) {
  size_t o = 0, seg = 0;
  for (size_t i = 0; i <= n; i++) {
    char c;
    if (i == n || p[i] == '/') {
      size_t len = o - seg;
      if ((len == 1 && out[seg] == '.') || len == 0) {
        o = seg; /* "." or an empty segment: nothing */
      } else if (len == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        return 403;
      } else if (i < n) {
        if (o + 1 >= cap)
          return 404;
        out[o++] = '/';
      }
      seg = o;
      continue;
    }
    c = p[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
      int lo = i + 2 < n ? hexval(p[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return 404;
      c = (char)(hi * 16 + lo);
      i += 2;
      if (c == '/' || c == '\\' || c == '\0')
        return 404;
    } else if (c == '\\' || c == '\0') {
      return 404;
    }
    if (o + 1 >= cap)
      return 404;
    out[o++] = c;
  }
  if (o > 0 && out[o - 1] == '/')
    o--;
  out[o] = '\0';
  *outlen = o;
  return 0;
}

/* ---- The open-file cache --------------------------------------------------
 */

static unsigned hash(const char *s, size_t n) {
  unsigned h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static void entry_unref(entry_t *en) {
  if (--en->refs > 0)
    return;
  close(en->fd); /* a regular file: close does not block */
  free(en);
}

static void cache_remove(eddy_http_static_t *st, entry_t *en) {
  entry_t **pp = &st->buckets[hash(en->path, en->pathlen) % st->nbuckets];
  while (*pp != en)
    pp = &(*pp)->chain;
  *pp = en->chain;
  eddy__queue_remove(&en->lru);
  en->cached = 0;
  st->stats.cached--;
  entry_unref(en);
}

static entry_t *cache_find(eddy_http_static_t *st, const char *path, size_t n) {
  if (st->nbuckets == 0)
    return NULL;
  entry_t *en = st->buckets[hash(path, n) % st->nbuckets];
  for (; en != NULL; en = en->chain)
    if (en->pathlen == n && memcmp(en->path, path, n) == 0)
      return en;
  return NULL;
}

/* Takes the new entry in, replacing one of the same path and making room
 * by dropping the least recently used. */
static void cache_insert(eddy_http_static_t *st, entry_t *en) {
  if (st->max_entries == 0 || st->closed)
    return;
  entry_t *old = cache_find(st, en->path, en->pathlen);
  if (old != NULL)
    cache_remove(st, old);
  if (st->stats.cached >= st->max_entries)
    cache_remove(st, eddy__container_of(st->lru.prev, entry_t, lru));
  unsigned b = hash(en->path, en->pathlen) % st->nbuckets;
  en->chain = st->buckets[b];
  st->buckets[b] = en;
  eddy__queue_insert_head(&st->lru, &en->lru);
  en->cached = 1;
  en->refs++;
  st->stats.cached++;
}

/* ---- Answering ------------------------------------------------------------
 */

static void refuse(eddy_http_static_t *st, eddy_http_req_t *req,
                   eddy_http_res_t *res, int status) {
  static const char allow[] = "GET, HEAD";
  const char *reason = eddy_http_status_reason(status);
  char body[64];
  int n = snprintf(body, sizeof body, "%d %s\n", status, reason);
  st->stats.refused++;
  eddy_http_set_status(res, status);
  if (status == 405)
    eddy_http_set_header(res, "Allow", allow);
  eddy_http_set_header(res, "Content-Type", "text/plain; charset=utf-8");
  eddy_http_end(res, body, (size_t)n);
}

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") to seconds, or -1. */
static int64_t parse_date(const eddy_http_str_t *v) {
  char buf[40];
  struct tm tm;
  if (v->len >= sizeof buf)
    return -1;
  memcpy(buf, v->base, v->len);
  buf[v->len] = '\0';
  memset(&tm, 0, sizeof tm);
  const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == NULL || *end != '\0')
    return -1;
  return (int64_t)timegm(&tm);
}

/* If-None-Match names the entity tag (or "*"); weak comparison. */
static int etag_matches(const eddy_http_str_t *v, const char *etag) {
  size_t el = strlen(etag);
  if (v->len == 1 && v->base[0] == '*')
    return 1;
  for (size_t i = 0; i + el <= v->len; i++)
    if (memcmp(v->base + i, etag, el) == 0)
      return 1;
  return 0;
}

static int not_modified(const eddy_http_req_t *req, const entry_t *en) {
  const eddy_http_str_t *inm = eddy_http_req_header(req, "If-None-Match");
  if (inm != NULL)
    return etag_matches(inm, en->etag);
  const eddy_http_str_t *ims = eddy_http_req_header(req, "If-Modified-Since");
  if (ims == NULL)
    return 0;
  int64_t t = parse_date(ims);
  return t >= 0 && en->mtime <= t;
}

static int parse_u64(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (n == 0 || n > 19)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

/* "bytes=a-b", "bytes=a-", "bytes=-n": 1 and [*from, *to] (inclusive) for
 * one satisfiable range; 0 to ignore the header (several ranges, or
 * malformed); -1 when unsatisfiable. */
static int parse_range(const eddy_http_str_t *v, uint64_t size, uint64_t *from,
                       uint64_t *to) {
  const char *s = v->base;
  size_t n = v->len;
  if (n < 7 || strncasecmp(s, "bytes=", 6) != 0 || memchr(s, ',', n) != NULL)
    return 0;
  s += 6;
  n -= 6;
  const char *dash = memchr(s, '-', n);
  if (dash == NULL)
    return 0;
  size_t a = (size_t)(dash - s), b = n - a - 1;
  uint64_t x, y;
  if (a == 0) { /* the last y bytes */
    if (parse_u64(dash + 1, b, &y) != 0)
      return 0;
    if (y == 0 || size == 0)
      return -1;
    *from = y >= size ? 0 : size - y;
    *to = size - 1;
    return 1;
  }
  if (parse_u64(s, a, &x) != 0)
    return 0;
  if (b == 0)
    y = UINT64_MAX;
  else if (parse_u64(dash + 1, b, &y) != 0 || y < x)
    return 0;
  if (x >= size)
    return -1;
  *from = x;
  *to = y >= size ? size - 1 : y;
  return 1;
}

static void file_sent(void *arg, int status) {
  entry_t *en = arg;
  eddy_http_static_t *st = en->st;
  entry_unref(en);
  static_unref(st);
}

static void answer(eddy_http_static_t *st, eddy_http_req_t *req,
                   eddy_http_res_t *res, entry_t *en) {
  eddy_http_set_header(res, "Last-Modified", en->lastmod);
  eddy_http_set_header(res, "ETag", en->etag);
  if (not_modified(req, en)) {
    st->stats.not_modified++;
    eddy_http_set_status(res, 304);
    eddy_http_end(res, NULL, 0);
    return;
  }
  eddy_http_set_header(res, "Content-Type", en->type);
  eddy_http_set_header(res, "Accept-Ranges", "bytes");
  uint64_t from = 0, to = en->size - 1, len = en->size;
  const eddy_http_str_t *range = eddy_http_req_header(req, "Range");
  int r = range != NULL ? parse_range(range, en->size, &from, &to) : 0;
  char cr[80];
  if (r < 0) {
    snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)en->size);
    eddy_http_set_header(res, "Content-Range", cr);
    refuse(st, req, res, 416);
    return;
  }
  if (r > 0) {
    len = to - from + 1;
    snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)from,
             (unsigned long long)to, (unsigned long long)en->size);
    eddy_http_set_header(res, "Content-Range", cr);
    eddy_http_set_status(res, 206);
  }
  st->stats.served++;
  en->refs++;
  st->inflight++;
  int err = eddy_http_send_file(res, en->fd, (int64_t)from, len, file_sent, en);
  if (err != 0) {
    en->refs--;
    st->inflight--;
    if (err == EDDY_EINVAL || err == EDDY_EBUSY)
      eddy_http_end(res, NULL, 0); /* still ours to end */
  }
}

/* ---- Opening: the jail's second wall --------------------------------------
 */

static void open_step(eddy_fs_t *fs);

static void opening_done(opening_t *op, int status) {
  eddy_http_static_t *st = op->st;
  if (op->fd >= 0)
    close(op->fd);
  if (op->stale != NULL) {
    op->stale->revalidating = 0;
    if (status != 0 && op->stale->cached) /* gone, or no longer allowed */
      cache_remove(st, op->stale);
    entry_unref(op->stale);
  }
  if (status != 0)
    refuse(st, op->req, op->res, status);
  free(op);
  static_unref(st);
}

static int start_open(opening_t *op) {
  eddy_http_static_t *st = op->st;
  snprintf(op->full, sizeof op->full, "%s/%s", st->root, op->path);
  op->fd = -1;
  st->stats.opens++;
  return eddy_fs_open(st->loop, &op->fs, op->full, O_RDONLY | O_NONBLOCK, 0,
                      open_step);
}

/* The entry for a regular file just opened and checked. */
static void opened_file(opening_t *op, const eddy_stat_t *sb) {
  eddy_http_static_t *st = op->st;
  entry_t *en = malloc(sizeof *en + op->keylen + 1);
  if (en == NULL) {
    opening_done(op, 500);
    return;
  }
  memset(en, 0, sizeof *en);
  en->refs = 1; /* this request's, until answered */
  en->fd = op->fd;
  op->fd = -1;
  en->size = sb->size;
  en->mtime = (int64_t)sb->mtime.tv_sec;
  en->validated = eddy_now(st->loop);
  en->type = content_type(op->path);
  snprintf(en->etag, sizeof en->etag, "\"%llx-%llx\"",
           (unsigned long long)en->mtime, (unsigned long long)en->size);
  char line[EDDY__HTTP_DATE_LINE + 1];
  eddy__http_date_format(line, en->mtime);
  memcpy(en->lastmod, line + 6, 29); /* after "Date: ", before CRLF */
  en->lastmod[29] = '\0';
  en->pathlen = op->keylen;
  memcpy(en->path, op->path, op->keylen);
  en->path[op->keylen] = '\0';
  en->st = st;
  eddy__queue_init(&en->lru);
  cache_insert(st, en);
  if (!st->closed)
    answer(st, op->req, op->res, en);
  else
    refuse(st, op->req, op->res, 503);
  entry_unref(en);
  opening_done(op, 0);
}

static int under_root(const eddy_http_static_t *st, const char *real) {
  return strncmp(real, st->root, st->rootlen) == 0 &&
         (real[st->rootlen] == '/' || real[st->rootlen] == '\0');
}

/* open -> readlink /proc/self/fd/N -> fstat, one fs request at a time. */
static void open_step(eddy_fs_t *fs) {
  opening_t *op = eddy__container_of(fs, opening_t, fs);
  eddy_http_static_t *st = op->st;
  eddy_fs_type type = fs->type;
  ssize_t result = fs->result;
  int ok = result >= 0;
  if (ok && type == EDDY_FS_READLINK)
    ok = under_root(st, fs->ptr);
  eddy_stat_t sb = fs->statbuf;
  eddy_fs_req_cleanup(fs);
  if (!ok) {
    /* Missing, or outside the root (which looks the same); 403 when the
     * file exists but may not be read. */
    opening_done(op, result == EDDY_EACCES ? 403 : 404);
    return;
  }
  int err = 0;
  char proc[40];
  switch (type) {
  case EDDY_FS_OPEN:
    op->fd = (int)result;
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", op->fd);
    err = eddy_fs_readlink(st->loop, fs, proc, open_step);
    break;
  case EDDY_FS_READLINK:
    err = eddy_fs_fstat(st->loop, fs, op->fd, open_step);
    break;
  default: /* fstat */
    if (S_ISREG(sb.mode)) {
      opened_file(op, &sb);
      return;
    }
    if (!S_ISDIR(sb.mode) || op->tried_index ||
        op->pathlen + 1 + strlen(st->index) >= sizeof op->path) {
      opening_done(op, 404);
      return;
    }
    close(op->fd);
    op->fd = -1;
    op->tried_index = 1;
    op->pathlen +=
        (size_t)snprintf(op->path + op->pathlen, sizeof op->path - op->pathlen,
                         "%s%s", op->pathlen > 0 ? "/" : "", st->index);
    err = start_open(op);
    break;
  }
  if (err != 0)
    opening_done(op, 500);
}

/* ---- The handler ------------------------------------------------------------
 */

void eddy_http_static_options_init(eddy_http_static_options_t *o) {
  memset(o, 0, sizeof *o);
  o->prefix = "/";
  o->index = "index.html";
  o->cache_entries = 256;
  o->cache_valid_ms = 1000;
}

int eddy_http_static_serve(eddy_http_static_t *st, eddy_http_req_t *req,
                           eddy_http_res_t *res) {
  EDDY__MISUSE(st->closed, 0);
  const char *p = req->path.base;
  size_t n = req->path.len, pl = st->prefixlen;
  /* The prefix ends with '/'; "/static" itself belongs to "/static/". */
  int bare = n == pl - 1 && memcmp(p, st->prefix, n) == 0;
  if (!bare && (n < pl || memcmp(p, st->prefix, pl) != 0))
    return 0;
  size_t skip = bare ? n : pl;
  if (req->method != EDDY_HTTP_GET && req->method != EDDY_HTTP_HEAD) {
    refuse(st, req, res, 405);
    return 1;
  }
  opening_t *op = malloc(sizeof *op);
  if (op == NULL) {
    refuse(st, req, res, 500);
    return 1;
  }
  int status =
      decode_path(p + skip, n - skip, op->path, STATIC_PATH_MAX, &op->pathlen);
  if (status != 0) {
    free(op);
    refuse(st, req, res, status);
    return 1;
  }
  /* A stale entry is opened again by one request; the others go on with
   * it meanwhile, instead of all opening the same file at once. */
  entry_t *en = cache_find(st, op->path, op->pathlen);
  if (en != NULL &&
      (en->revalidating || eddy_now(st->loop) - en->validated < st->valid_ms)) {
    free(op);
    st->stats.cache_hits++;
    eddy__queue_remove(&en->lru);
    eddy__queue_insert_head(&st->lru, &en->lru);
    answer(st, req, res, en);
    return 1;
  }
  op->st = st;
  op->req = req;
  op->res = res;
  op->tried_index = 0;
  op->keylen = op->pathlen;
  op->stale = en;
  if (en != NULL) {
    en->revalidating = 1;
    en->refs++;
  }
  st->inflight++;
  if (start_open(op) != 0)
    opening_done(op, 500);
  return 1;
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d != NULL)
    memcpy(d, s, n);
  return d;
}

static void static_free(eddy_http_static_t *st) {
  free(st->root);
  free(st->prefix);
  free(st->index);
  free(st->buckets);
  free(st);
}

static void static_unref(eddy_http_static_t *st) {
  if (--st->inflight == 0 && st->closed)
    static_free(st);
}

int eddy_http_static_init(eddy_loop_t *loop, eddy_http_static_t **out,
                          const eddy_http_static_options_t *o) {
  if (out == NULL || o == NULL || o->root == NULL)
    return EDDY_EINVAL;
  const char *prefix = o->prefix != NULL ? o->prefix : "/";
  const char *index = o->index != NULL ? o->index : "index.html";
  if (prefix[0] != '/' || index[0] == '\0' || strchr(index, '/') != NULL)
    return EDDY_EINVAL;
  eddy_fs_t fs;
  int err = eddy_fs_realpath(loop, &fs, o->root, NULL); /* start-up: sync */
  if (err < 0) {
    eddy_fs_req_cleanup(&fs);
    return err;
  }
  struct stat sb;
  if (stat(fs.ptr, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    eddy_fs_req_cleanup(&fs);
    return EDDY_ENOTDIR;
  }
  eddy_http_static_t *st = calloc(1, sizeof *st);
  if (st == NULL) {
    eddy_fs_req_cleanup(&fs);
    return EDDY_ENOMEM;
  }
  st->loop = loop;
  st->root = dup_str(fs.ptr);
  eddy_fs_req_cleanup(&fs);
  size_t pn = strlen(prefix);
  st->prefix = malloc(pn + 2);
  if (st->prefix != NULL) /* always ending with '/' */
    snprintf(st->prefix, pn + 2, "%s%s", prefix,
             prefix[pn - 1] == '/' ? "" : "/");
  st->index = dup_str(index);
  st->max_entries = o->cache_entries;
  st->valid_ms = o->cache_valid_ms;
  st->nbuckets = st->max_entries > 0 ? st->max_entries * 2 : 0;
  if (st->nbuckets > 0)
    st->buckets = calloc(st->nbuckets, sizeof *st->buckets);
  if (st->root == NULL || st->prefix == NULL || st->index == NULL ||
      (st->nbuckets > 0 && st->buckets == NULL)) {
    static_free(st);
    return EDDY_ENOMEM;
  }
  st->rootlen = strlen(st->root);
  if (st->rootlen == 1) /* "/": every real path is under it */
    st->rootlen = 0;
  st->prefixlen = strlen(st->prefix);
  eddy__queue_init(&st->lru);
  *out = st;
  return 0;
}

void eddy_http_static_stats(const eddy_http_static_t *st,
                            eddy_http_static_stats_t *out) {
  *out = st->stats;
}

void eddy_http_static_close(eddy_http_static_t *st) {
  if (st == NULL || st->closed)
    return;
  while (!eddy__queue_empty(&st->lru))
    cache_remove(st, eddy__container_of(st->lru.next, entry_t, lru));
  st->closed = 1;
  if (st->inflight == 0)
    static_free(st);
}
