/* The thumbnail service: GET and POST /thumb on top of image jobs, with an
 * LRU response cache.  Used by eddy-thumb and eddy-server alike.
 *
 * A GET goes: parse the query (400) -> on the pool, fast class: resolve the
 * source under the root and stat it (403, 404), because even a stat may
 * block on a slow disk and the loop must not -> the cache, keyed by real
 * path, size, mtime and the parameters -> on a miss, an image job (slow
 * class), which reads the file itself.  A POST reads the body as it
 * streams in (hashing it as it comes, so the loop never walks a whole body
 * at once), then the cache, then a job on the buffer.
 *
 * Every request handed to eddy_thumb_serve is ended exactly once: when
 * the client goes away meanwhile, a queued job is cancelled and the
 * request ended from its callback. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net/http/thumb.h"

typedef struct {
  unsigned long w, h;
  int fit; /* eddy_image_fit_mode */
  int has_crop;
  long cx, cy;
  unsigned long cw, ch;
  int fmt; /* eddy_image_format */
  int q;
  char src[1024];
} thumb_params_t;

typedef struct {
  eddy_thumb_service_t *svc;
  eddy_http_req_t *req;
  eddy_http_res_t *res;
  thumb_params_t p;
  char *key;
  int cacheable;
  /* GET: the stat on the pool. */
  eddy_work_t stat_work;
  char *real; /* the source's real path */
  int stat_err;
  long long size, mtime_ns;
  /* POST: the body. */
  unsigned char *body;
  size_t body_len, body_cap;
  uint64_t body_hash;
  eddy_image_t job;
  int in_job;
} thumb_req_t;

void eddy_thumb_options_init(eddy_thumb_options_t *o) {
  eddy_image_t defaults;
  memset(o, 0, sizeof *o);
  o->cache_bytes = 64u << 20;
  o->max_body = 16u << 20;
  o->max_side = 4096;
  o->cache_posts = 1;
  eddy_image_init(&defaults);
  o->limits = defaults.limits;
}

int eddy_thumb_service_init(eddy_loop_t *loop, eddy_thumb_service_t *svc,
                            const eddy_thumb_options_t *opts) {
  memset(svc, 0, sizeof *svc);
  svc->loop = loop;
  if (opts != NULL)
    svc->opts = *opts;
  else
    eddy_thumb_options_init(&svc->opts);
  svc->opts.root = NULL;
  if (opts != NULL && opts->root != NULL) {
    /* Once, at start-up: resolving the root later would be on the loop. */
    svc->root_real = realpath(opts->root, NULL);
    if (svc->root_real == NULL)
      return -errno;
  }
  if (svc->opts.cache_bytes > 0) {
    svc->cache = eddy__thumb_cache_new(svc->opts.cache_bytes);
    if (svc->cache == NULL) {
      free(svc->root_real);
      svc->root_real = NULL;
      return EDDY_ENOMEM;
    }
  }
  return 0;
}

void eddy_thumb_service_close(eddy_thumb_service_t *svc) {
  eddy__thumb_cache_free(svc->cache);
  svc->cache = NULL;
  free(svc->root_real);
  svc->root_real = NULL;
}

void eddy_thumb_service_stats(const eddy_thumb_service_t *svc,
                              eddy_thumb_stats_t *out) {
  *out = svc->stats;
  eddy__thumb_cache_usage(svc->cache, &out->cache_entries, &out->cache_bytes);
}

/* ---- Answering ----------------------------------------------------------- */

static void finish(thumb_req_t *tr) {
  tr->svc->stats.in_flight--;
  eddy_image_cleanup(&tr->job);
  free(tr->key);
  free(tr->real);
  free(tr->body);
  free(tr);
}

static void send_error(thumb_req_t *tr, int status, const char *msg) {
  char body[384];
  /* 422 is WebDAV's, and newer than the server's table. */
  const char *reason =
      status == 422 ? "Unprocessable Content" : eddy_http_status_reason(status);
  int n = snprintf(body, sizeof body, "%d %s: %s\n", status, reason, msg);
  if (n >= (int)sizeof body)
    n = (int)sizeof body - 1;
  tr->svc->stats.errors++;
  eddy_http_set_status(tr->res, status);
  eddy_http_set_header(tr->res, "Content-Type", "text/plain; charset=utf-8");
  eddy_http_set_header(tr->res, "Cache-Control", "no-store");
  eddy_http_end(tr->res, body, (size_t)n);
  finish(tr);
}

static void send_image(thumb_req_t *tr, const void *data, size_t len,
                       eddy_image_format fmt, int hit) {
  eddy_http_set_status(tr->res, 200);
  eddy_http_set_header(tr->res, "Content-Type", eddy_image_format_mime(fmt));
  eddy_http_set_header(tr->res, "Cache-Control", "public, max-age=3600");
  eddy_http_set_header(tr->res, "X-Cache", hit ? "HIT" : "MISS");
  eddy_http_end(tr->res, data, len);
}

/* The HTTP status for a failed job. */
static int http_status(const eddy_image_t *job, int status) {
  switch (job->error) {
  case EDDY_IMAGE_EFILE:
    return status == EDDY_EACCES ? 403 : status == EDDY_EIO ? 500 : 404;
  case EDDY_IMAGE_EEMPTY:
  case EDDY_IMAGE_EFORMAT:
  case EDDY_IMAGE_ECORRUPT:
    return 422;
  case EDDY_IMAGE_ETOO_LARGE:
    return 413;
  case EDDY_IMAGE_EOP:
    return 400;
  case EDDY_IMAGE_ERESOURCE:
  case EDDY_IMAGE_ECANCELED:
    return 503;
  default:
    return 500;
  }
}

static void job_done(eddy_image_t *job, int status) {
  thumb_req_t *tr = job->data;
  tr->in_job = 0;
  if (status != 0) {
    /* A file error's message names the real path: not for the client. */
    send_error(tr, http_status(job, status),
               job->error == EDDY_IMAGE_EFILE ? "cannot read the source"
                                              : job->message);
    return;
  }
  size_t len;
  eddy_image_format fmt = job->out_format;
  unsigned char *out = eddy_image_take_output(job, &len);
  send_image(tr, out, len, fmt, 0);
  if (tr->svc->cache == NULL || !tr->cacheable ||
      !eddy__thumb_cache_put(tr->svc->cache, tr->key, out, len, fmt))
    free(out);
  finish(tr);
}

/* The pipeline the parameters ask for: crop, then fit or thumbnail, then
 * strip (a thumbnail carries no metadata). */
static int build_job(thumb_req_t *tr) {
  const thumb_params_t *p = &tr->p;
  eddy_image_t *job = &tr->job;
  int err = 0;
  job->data = tr;
  job->limits = tr->svc->opts.limits;
  if (p->has_crop)
    err = eddy_image_crop(job, p->cx, p->cy, p->cw, p->ch);
  if (err == 0 && p->w > 0 && p->h > 0)
    err = eddy_image_fit(job, p->w, p->h, (eddy_image_fit_mode)p->fit);
  else if (err == 0 && (p->w > 0 || p->h > 0))
    err = eddy_image_thumbnail(job, p->w, p->h);
  if (err == 0)
    err = eddy_image_strip(job);
  if (err == 0)
    err = eddy_image_output(job, (eddy_image_format)p->fmt, p->q);
  return err;
}

static void run_job(thumb_req_t *tr) {
  eddy__thumb_hit_t hit;
  if (tr->svc->cache != NULL && tr->cacheable &&
      eddy__thumb_cache_get(tr->svc->cache, tr->key, &hit)) {
    tr->svc->stats.hits++;
    send_image(tr, hit.data, hit.len, hit.fmt, 1);
    finish(tr);
    return;
  }
  int err = build_job(tr);
  if (err == 0)
    err = eddy_image_run(tr->svc->loop, &tr->job, job_done);
  if (err != 0) {
    send_error(tr, 500, eddy_strerror(err));
    return;
  }
  tr->in_job = 1;
  tr->svc->stats.jobs++;
}

/* The client went away: a job still queued is not worth running.  The
 * request is ended from the job's callback all the same. */
static void on_abort(eddy_http_res_t *res, int status) {
  thumb_req_t *tr = res->data;
  if (tr->in_job)
    eddy_image_cancel(&tr->job);
}

/* ---- Parameters ---------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into out (NUL-terminated); -1 if malformed,
 * too long, or it decodes to a NUL byte. */
static int url_decode(const char *s, size_t len, char *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    int c = (unsigned char)s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      if (i + 2 >= len)
        return -1;
      int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (c == 0 || n + 1 >= cap)
      return -1;
    out[n++] = (char)c;
  }
  out[n] = '\0';
  return 0;
}

/* A decimal number in [lo, hi] and nothing else. */
static int parse_num(const char *s, long lo, long hi, long *out) {
  char *end;
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (*end != '\0' || errno != 0 || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

static int parse_crop(const char *s, thumb_params_t *p) {
  long v[4];
  char buf[96];
  if (strlen(s) >= sizeof buf)
    return -1;
  strcpy(buf, s);
  char *save = NULL, *tok = strtok_r(buf, ",", &save);
  for (int i = 0; i < 4; i++, tok = strtok_r(NULL, ",", &save))
    if (tok == NULL || parse_num(tok, i < 2 ? 0 : 1, 1L << 20, &v[i]) != 0)
      return -1;
  if (tok != NULL)
    return -1;
  p->has_crop = 1;
  p->cx = v[0];
  p->cy = v[1];
  p->cw = (unsigned long)v[2];
  p->ch = (unsigned long)v[3];
  return 0;
}

/* One key=value; a message for a bad one, else NULL. */
static const char *parse_param(const char *k, size_t klen, const char *v,
                               thumb_params_t *p, unsigned max_side) {
  long n;
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(k, s, klen) == 0)
  if (KEY("src")) {
    if (strlen(v) >= sizeof p->src)
      return "src is too long";
    strcpy(p->src, v);
  } else if (KEY("w") || KEY("h")) {
    if (parse_num(v, 1, (long)max_side, &n) != 0)
      return "w and h must be 1..max side";
    *(KEY("w") ? &p->w : &p->h) = (unsigned long)n;
  } else if (KEY("fit")) {
    if (strcmp(v, "contain") == 0)
      p->fit = EDDY_IMAGE_CONTAIN;
    else if (strcmp(v, "cover") == 0)
      p->fit = EDDY_IMAGE_COVER;
    else
      return "fit must be contain or cover";
  } else if (KEY("crop")) {
    if (parse_crop(v, p) != 0)
      return "crop must be X,Y,W,H";
  } else if (KEY("fmt")) {
    int f = eddy_image_format_parse(v, strlen(v));
    if (f < 0)
      return "fmt must be jpg, png, webp or gif";
    p->fmt = f;
  } else if (KEY("q")) {
    if (parse_num(v, 1, 100, &n) != 0)
      return "q must be 1..100";
    p->q = (int)n;
  }
#undef KEY
  return NULL; /* unknown keys are ignored, as by most image services */
}

static const char *parse_query(const eddy_http_str_t *q, thumb_params_t *p,
                               unsigned max_side) {
  char v[sizeof p->src];
  const char *s = q->base, *end = q->base + q->len;
  memset(p, 0, sizeof *p);
  while (s < end) {
    const char *amp = memchr(s, '&', (size_t)(end - s));
    const char *stop = amp != NULL ? amp : end;
    const char *eq = memchr(s, '=', (size_t)(stop - s));
    const char *vs = eq != NULL ? eq + 1 : stop;
    if (url_decode(vs, (size_t)(stop - vs), v, sizeof v) != 0)
      return "malformed query";
    const char *bad =
        parse_param(s, (size_t)((eq != NULL ? eq : stop) - s), v, p, max_side);
    if (bad != NULL)
      return bad;
    s = stop + 1;
  }
  if (p->w == 0 && p->h == 0 && !p->has_crop)
    return "w, h or crop is needed";
  return NULL;
}

/* The parameters' part of a cache key. */
static int params_key(const thumb_params_t *p, char *out, size_t cap) {
  return snprintf(out, cap,
                  "w=%lu,h=%lu,fit=%d,crop=%d:%ld,%ld,%lu,%lu,"
                  "fmt=%d,q=%d",
                  p->w, p->h, p->fit, p->has_crop, p->cx, p->cy, p->cw, p->ch,
                  p->fmt, p->q);
}

static int set_key(thumb_req_t *tr, const char *source) {
  char params[160];
  params_key(&tr->p, params, sizeof params);
  size_t n = strlen(source) + strlen(params) + 2;
  tr->key = malloc(n);
  if (tr->key == NULL)
    return EDDY_ENOMEM;
  snprintf(tr->key, n, "%s|%s", source, params);
  return 0;
}

/* ---- GET: the source under the root ------------------------------------- */

/* Lexically inside the root: relative, no "..", not empty. */
static int src_is_tame(const char *src) {
  if (src[0] == '/')
    return 0;
  for (const char *c = src; *c != '\0';) {
    size_t n = strcspn(c, "/");
    if (n == 2 && c[0] == '.' && c[1] == '.')
      return 0;
    c += n;
    c += *c == '/';
  }
  return 1;
}

/* On a pool thread: realpath, the jail, stat.  Only the request's own
 * fields are touched. */
static void stat_work(eddy_work_t *w) {
  thumb_req_t *tr = eddy__container_of(w, thumb_req_t, stat_work);
  const char *root = tr->svc->root_real;
  size_t rlen = strlen(root);
  char path[PATH_MAX];
  struct stat st;
  if (snprintf(path, sizeof path, "%s/%s", root, tr->p.src) >=
      (int)sizeof path) {
    tr->stat_err = 404;
    return;
  }
  tr->real = realpath(path, NULL);
  if (tr->real == NULL) {
    tr->stat_err = errno == EACCES ? 403 : 404;
    return;
  }
  if (strncmp(tr->real, root, rlen) != 0 ||
      (tr->real[rlen] != '/' && strcmp(root, "/") != 0)) {
    tr->stat_err = 403; /* a symlink out of the root */
    return;
  }
  if (stat(tr->real, &st) != 0 || !S_ISREG(st.st_mode)) {
    tr->stat_err = 404;
    return;
  }
  tr->size = (long long)st.st_size;
  tr->mtime_ns =
      (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

static void stat_after(eddy_work_t *w, int status) {
  thumb_req_t *tr = eddy__container_of(w, thumb_req_t, stat_work);
  char source[PATH_MAX + 64];
  if (tr->stat_err != 0) {
    send_error(tr, tr->stat_err,
               tr->stat_err == 403 ? "outside the root" : "no such source");
    return;
  }
  snprintf(source, sizeof source, "f:%s:%lld:%lld", tr->real, tr->size,
           tr->mtime_ns);
  tr->cacheable = 1;
  int err = set_key(tr, source);
  if (err == 0)
    err = eddy_image_source_file(&tr->job, tr->real);
  if (err != 0) {
    send_error(tr, 500, eddy_strerror(err));
    return;
  }
  run_job(tr);
}

static void start_get(thumb_req_t *tr) {
  if (tr->svc->root_real == NULL || tr->p.src[0] == '\0') {
    send_error(tr, tr->p.src[0] == '\0' ? 400 : 404,
               tr->p.src[0] == '\0' ? "src is needed" : "no root to serve");
    return;
  }
  if (!src_is_tame(tr->p.src)) {
    send_error(tr, 403, "src must be a relative path without ..");
    return;
  }
  int err = eddy_queue_work(tr->svc->loop, &tr->stat_work, EDDY_WORK_FAST,
                            stat_work, stat_after);
  if (err != 0)
    send_error(tr, 503, eddy_strerror(err));
}

/* ---- POST: the image in the body ----------------------------------------- */

static int append_body(thumb_req_t *tr, const char *data, size_t len) {
  if (tr->body_len + len > tr->body_cap) {
    size_t cap = tr->body_cap > 0 ? tr->body_cap : 64 * 1024;
    while (cap < tr->body_len + len)
      cap *= 2;
    unsigned char *b = realloc(tr->body, cap);
    if (b == NULL)
      return EDDY_ENOMEM;
    tr->body = b;
    tr->body_cap = cap;
  }
  memcpy(tr->body + tr->body_len, data, len);
  tr->body_len += len;
  tr->body_hash = eddy__fnv1a(tr->body_hash, data, len);
  return 0;
}

static void on_body(eddy_http_req_t *req, ssize_t n, const eddy_slice_t *b) {
  thumb_req_t *tr = req->data;
  char source[64];
  if (n > 0) {
    if (tr->body_len + (size_t)n > tr->svc->opts.max_body) {
      /* The rest of the body is read and dropped by the server. */
      send_error(tr, 413, "the body is over the limit");
      return;
    }
    if (append_body(tr, b->base, (size_t)n) != 0)
      send_error(tr, 503, "out of memory");
    return;
  }
  if (n != EDDY_EOF) { /* the server answered (413, 400) or the client left */
    eddy_http_end(tr->res, NULL, 0);
    finish(tr);
    return;
  }
  snprintf(source, sizeof source, "b:%016llx:%zu",
           (unsigned long long)tr->body_hash, tr->body_len);
  tr->cacheable = tr->svc->opts.cache_posts;
  int err = set_key(tr, source);
  if (err == 0)
    err = eddy_image_source_buffer(&tr->job, tr->body, tr->body_len);
  if (err != 0) {
    send_error(tr, 500, eddy_strerror(err));
    return;
  }
  run_job(tr);
}

static void start_post(thumb_req_t *tr) {
  if (tr->req->content_length > 0 &&
      (uint64_t)tr->req->content_length > tr->svc->opts.max_body) {
    send_error(tr, 413, "the body is over the limit");
    return;
  }
  tr->body_hash = EDDY__FNV_INIT;
  tr->req->data = tr;
  int err = eddy_http_req_read_start(tr->req, on_body);
  if (err != 0)
    send_error(tr, 500, eddy_strerror(err));
}

/* ---- Entry --------------------------------------------------------------- */

int eddy_thumb_serve(eddy_thumb_service_t *svc, eddy_http_req_t *req,
                     eddy_http_res_t *res) {
  static const char path[] = "/thumb";
  if (req->path.len != sizeof path - 1 ||
      memcmp(req->path.base, path, sizeof path - 1) != 0)
    return 0;
  svc->stats.requests++;
  thumb_req_t *tr = calloc(1, sizeof *tr);
  if (tr == NULL) {
    eddy_http_set_status(res, 503);
    eddy_http_end(res, "out of memory\n", 14);
    return 1;
  }
  tr->svc = svc;
  tr->req = req;
  tr->res = res;
  svc->stats.in_flight++;
  eddy_image_init(&tr->job);
  res->data = tr;
  eddy_http_res_set_abort_cb(res, on_abort);
  int get = req->method == EDDY_HTTP_GET || req->method == EDDY_HTTP_HEAD;
  if (!get && req->method != EDDY_HTTP_POST) {
    eddy_http_set_header(res, "Allow", "GET, HEAD, POST");
    send_error(tr, 405, "GET or POST");
    return 1;
  }
  const char *bad = parse_query(&req->query, &tr->p, svc->opts.max_side);
  if (bad != NULL)
    send_error(tr, 400, bad);
  else if (get)
    start_get(tr);
  else
    start_post(tr);
  return 1;
}
