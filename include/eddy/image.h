/* eddy images: GraphicsMagick pipelines on the worker pool, and the
 * thumbnail HTTP service built on them.  Included by eddy.h; not to be
 * included alone.
 *
 * A job is one pipeline applied in one go on one pool thread, in the slow
 * work class: read the source (a file or a memory buffer), ping it (format
 * and dimensions from the header only) and refuse it if it is over the
 * job's limits, decode, apply the operations in the order they were added,
 * encode to a buffer or a file.  The callback runs on the loop's thread.
 *
 *   eddy_image_t job;
 *   eddy_image_init(&job);
 *   eddy_image_source_file(&job, "in.jpg");
 *   eddy_image_fit(&job, 320, 200, EDDY_IMAGE_COVER);
 *   eddy_image_output(&job, EDDY_IMAGE_JPEG, 80);
 *   eddy_image_run(loop, &job, done);      // done(job, status)
 *   ...in done: job->out, job->out_len; then eddy_image_cleanup(job).
 *
 * The result is a malloc()ed buffer owned by the job (job->out): it is
 * written by a pool thread, so it cannot come from the loop's slab pool.
 * eddy_image_cleanup frees it; eddy_image_take_output hands it over (free
 * it with free()).
 *
 * Errors: the callback's status is 0 or a negative EDDY_E* code, coarse
 * enough for code that only checks "did it work" (EDDY_ENOENT, EDDY_EACCES
 * for files; EDDY_EFBIG over a limit; EDDY_ENOMEM; EDDY_EINVAL for an
 * operation that does not fit the image or input that is not a readable
 * image; EDDY_ECANCELED).  job->error says exactly what went wrong
 * (eddy_image_error) and job->message carries GraphicsMagick's own words.
 *
 * GraphicsMagick is initialised lazily, by the first job, on a pool
 * thread, without its signal handlers (eddy owns signals).  A process that
 * forks workers (a cluster master) must not run image jobs before forking:
 * a child of a process that had initialised GraphicsMagick fails every job
 * with EDDY_EBUSY (GM's and OpenMP's threads and locks do not survive a
 * fork).  docs/images.md tells the whole story. */
#ifndef EDDY_IMAGE_H
#define EDDY_IMAGE_H

#ifdef __cplusplus
extern "C" {
#endif

#define EDDY_IMAGE_MAX_OPS 8

typedef struct eddy_image_s eddy_image_t;
typedef void (*eddy_image_cb)(eddy_image_t *job, int status);

typedef enum {
  EDDY_IMAGE_AUTO = 0, /* the source's format if JPEG, PNG, WebP or GIF,
                          else JPEG */
  EDDY_IMAGE_JPEG,
  EDDY_IMAGE_PNG,
  EDDY_IMAGE_WEBP,
  EDDY_IMAGE_GIF
} eddy_image_format;

typedef enum {
  EDDY_IMAGE_CONTAIN = 0, /* the whole image inside the box, aspect kept */
  EDDY_IMAGE_COVER        /* fill the box, aspect kept, overflow cropped
                             around the centre */
} eddy_image_fit_mode;

typedef enum {
  EDDY_IMAGE_OP_CROP = 1,  /* x, y, w, h: must lie inside the image */
  EDDY_IMAGE_OP_RESIZE,    /* w, h (0: from the aspect ratio); Lanczos */
  EDDY_IMAGE_OP_THUMBNAIL, /* w, h (0: from the aspect ratio); GM's fast
                              sample-then-resize */
  EDDY_IMAGE_OP_FIT,       /* w, h, fit: contain or cover, fast path */
  EDDY_IMAGE_OP_ROTATE,    /* degrees, clockwise */
  EDDY_IMAGE_OP_STRIP      /* drop profiles and comments (EXIF, ICC, ...) */
} eddy_image_op_type;

typedef struct {
  eddy_image_op_type type;
  long x, y;
  unsigned long w, h;
  double degrees;
  eddy_image_fit_mode fit;
} eddy_image_op_t;

/* Exactly what went wrong; the callback's status is the coarse errno. */
typedef enum {
  EDDY_IMAGE_OK = 0,
  EDDY_IMAGE_ECANCELED,   /* cancelled while queued */
  EDDY_IMAGE_EFILE,       /* the source could not be opened or read
                             (status: its errno) */
  EDDY_IMAGE_EEMPTY,      /* zero bytes of input */
  EDDY_IMAGE_EFORMAT,     /* not an image GraphicsMagick can read */
  EDDY_IMAGE_ECORRUPT,    /* an image, but damaged or truncated */
  EDDY_IMAGE_ETOO_LARGE,  /* over the pixel, width, height or input-size
                             limit (status EDDY_EFBIG) */
  EDDY_IMAGE_ERESOURCE,   /* GraphicsMagick's memory or disk cache limit,
                             or out of memory (EDDY_ENOMEM) */
  EDDY_IMAGE_EOP,         /* an operation does not fit the image (a crop
                             outside it, ...): EDDY_EINVAL */
  EDDY_IMAGE_EENCODE,     /* writing the output failed (EDDY_EIO) */
  EDDY_IMAGE_EFORK,       /* GraphicsMagick was initialised before this
                             process forked (EDDY_EBUSY) */
  EDDY_IMAGE_EUNAVAILABLE /* GraphicsMagick's library could not be loaded
                             (EDDY_ENOSYS) */
} eddy_image_error;

typedef struct {
  uint64_t max_pixels;      /* width * height; default 40,000,000 */
  unsigned long max_width;  /* default 16384 */
  unsigned long max_height; /* default 16384 */
  uint64_t max_input;       /* bytes of a source file; default 64 MiB */
} eddy_image_limits_t;

struct eddy_image_s {
  void *data; /* the application's */
  eddy_loop_t *loop;
  /* Input, set with eddy_image_source_*.  A buffer is borrowed: it must
   * stay valid and unchanged until the callback. */
  const void *src_data;
  size_t src_len;
  char *src_path; /* a copy */
  /* The pipeline, set with the operation functions. */
  eddy_image_op_t ops[EDDY_IMAGE_MAX_OPS];
  unsigned nops;
  eddy_image_format format;
  int quality;    /* 1..100 for JPEG and WebP; 0: GraphicsMagick's 75 */
  char *dst_path; /* a copy; NULL: the output goes to out/out_len */
  int ping_only;  /* eddy_image_ping: no decode, no output */
  int lenient;    /* 1: accept images GM reads with corruption warnings */
  eddy_image_limits_t limits;
  /* Results, valid in the callback. */
  unsigned char *out; /* the encoded image (malloc), or NULL */
  size_t out_len;
  unsigned long src_width, src_height; /* the source, from the ping */
  char src_format[16];                 /* "JPEG", "PNG", ... */
  unsigned long width, height;         /* the output */
  eddy_image_format out_format;        /* what was written */
  eddy_image_error error;
  char message[256]; /* GraphicsMagick's reason and description, or ours */
  /* Private. */
  eddy_work_t work;
  eddy_image_cb cb;
  int status;
};

/* Zeroes the job and sets the default limits; no allocation. */
EDDY_EXTERN void eddy_image_init(eddy_image_t *job);
/* Frees the copies and the output; the job may then be reused after
 * eddy_image_init.  Not while the job is queued or running. */
EDDY_EXTERN void eddy_image_cleanup(eddy_image_t *job);
/* The output buffer, now the caller's (free() it); *len its length. */
EDDY_EXTERN unsigned char *eddy_image_take_output(eddy_image_t *job,
                                                  size_t *len);

/* The source: a file (read on the pool thread; the path is copied) or a
 * buffer (borrowed until the callback).  EDDY_EINVAL for NULL or a second
 * source, EDDY_ENOMEM. */
EDDY_EXTERN int eddy_image_source_file(eddy_image_t *job, const char *path);
EDDY_EXTERN int eddy_image_source_buffer(eddy_image_t *job, const void *data,
                                         size_t len);

/* Operations, applied in the order added.  EDDY_ENOBUFS past
 * EDDY_IMAGE_MAX_OPS, EDDY_EINVAL for a zero size (both w and h 0, or a
 * crop of zero width or height). */
EDDY_EXTERN int eddy_image_crop(eddy_image_t *job, long x, long y,
                                unsigned long w, unsigned long h);
EDDY_EXTERN int eddy_image_resize(eddy_image_t *job, unsigned long w,
                                  unsigned long h);
EDDY_EXTERN int eddy_image_thumbnail(eddy_image_t *job, unsigned long w,
                                     unsigned long h);
EDDY_EXTERN int eddy_image_fit(eddy_image_t *job, unsigned long w,
                               unsigned long h, eddy_image_fit_mode mode);
EDDY_EXTERN int eddy_image_rotate(eddy_image_t *job, double degrees);
EDDY_EXTERN int eddy_image_strip(eddy_image_t *job);

/* The output's format and quality (0 or 1..100; else EDDY_EINVAL). */
EDDY_EXTERN int eddy_image_output(eddy_image_t *job, eddy_image_format fmt,
                                  int quality);
/* Write the output to a file instead of job->out (the path is copied). */
EDDY_EXTERN int eddy_image_output_file(eddy_image_t *job, const char *path);

/* Queues the pipeline on the pool (slow class).  cb runs on the loop's
 * thread with 0 or an error (see above).  EDDY_EINVAL without a source. */
EDDY_EXTERN int eddy_image_run(eddy_loop_t *loop, eddy_image_t *job,
                               eddy_image_cb cb);
/* Queues a ping: src_format, src_width and src_height from the header,
 * no pixels decoded, no limits but max_input applied. */
EDDY_EXTERN int eddy_image_ping(eddy_loop_t *loop, eddy_image_t *job,
                                eddy_image_cb cb);
/* Takes a queued job off the queue: its callback gets EDDY_ECANCELED.
 * EDDY_EBUSY once it runs or ran. */
EDDY_EXTERN int eddy_image_cancel(eddy_image_t *job);

/* "jpg", "png", "webp", "gif" -> the format; -1 if unknown. */
EDDY_EXTERN int eddy_image_format_parse(const char *name, size_t len);
/* "image/jpeg", ...; "application/octet-stream" for AUTO. */
EDDY_EXTERN const char *eddy_image_format_mime(eddy_image_format fmt);
EDDY_EXTERN const char *eddy_image_error_name(eddy_image_error err);

/* GraphicsMagick's OpenMP threads per job (per pool thread): 0 (the
 * default) means EDDY_IMAGE_THREADS, else 1 (measured best: more threads
 * per job spin; more pool threads use more cores better).  Takes effect for
 * jobs that start afterwards. */
EDDY_EXTERN void eddy_image_set_threads(unsigned n);
/* The nice value pool threads add to their own while they run an image
 * job (0..19): the loop's thread then wins a core whenever it wakes, which
 * keeps its latency low while every core makes images.  Default 10, or
 * EDDY_IMAGE_NICE; 0 turns it off.  Only applied where the thread may
 * return to its priority afterwards (CAP_SYS_NICE, or RLIMIT_NICE >= 20):
 * elsewhere it is a no-op, since the thread runs file work next. */
EDDY_EXTERN void eddy_image_set_nice(int n);
EDDY_EXTERN unsigned eddy_image_threads(void);
/* 1 once GraphicsMagick was initialised in this process. */
EDDY_EXTERN int eddy_image_initialized(void);

/* ---- The thumbnail service ----------------------------------------------
 *
 * The HTTP handler of eddy-thumb and eddy-server's /thumb routes:
 *
 *   GET  /thumb?src=NAME&w=W&h=H[&fit=contain|cover][&crop=X,Y,W,H]
 *              [&fmt=jpg|png|webp|gif][&q=1..100]
 *   POST /thumb?w=W&h=H[...]   with the image as the body
 *
 * A GET source is a file under the root (no "..", not absolute, and its
 * real path, symlinks resolved, must stay under the root's): resolving and
 * stat()ing it are done on the pool, never on the loop.  Results are kept
 * in an LRU cache bounded in bytes, keyed by the source's identity (real
 * path, size, mtime; or a hash of a posted body) and the parameters; a hit
 * answers without any image work (X-Cache: HIT).
 *
 * Answers: 200 with the image; 400 bad or missing parameters; 403 a path
 * escaping the root; 404 no such source; 405 another method; 413 a body
 * over the limit, or an image over the pixel limits; 422 not an image, or
 * corrupt; 500 when encoding fails. */

typedef struct eddy_thumb_service_s eddy_thumb_service_t;

typedef struct {
  const char *root;   /* directory of GET sources (copied); NULL: GET 404 */
  size_t cache_bytes; /* LRU cache size; default 64 MiB, 0: no cache */
  size_t max_body;    /* POST body limit; default 16 MiB */
  int cache_posts;    /* 1 (default): posted bodies are cached too, keyed by
                         a 64-bit FNV-1a hash, which is not collision-proof */
  unsigned max_side;  /* the largest w or h asked for; default 4096 */
  eddy_image_limits_t limits; /* for every job; eddy_image_init's defaults */
} eddy_thumb_options_t;

typedef struct {
  uint64_t requests; /* handled by eddy_thumb_serve */
  uint64_t hits;     /* answered from the cache */
  uint64_t jobs;     /* image jobs run */
  uint64_t errors;   /* answered with 4xx/5xx */
  size_t cache_entries;
  size_t cache_bytes;
  size_t in_flight; /* requests not yet answered */
} eddy_thumb_stats_t;

struct eddy_thumb_service_s {
  void *data; /* the application's */
  eddy_loop_t *loop;
  /* Private. */
  eddy_thumb_options_t opts;
  char *root_real; /* realpath of the root, or NULL */
  void *cache;     /* net/http/thumb_cache.c */
  eddy_thumb_stats_t stats;
};

EDDY_EXTERN void eddy_thumb_options_init(eddy_thumb_options_t *o);
/* opts may be NULL for the defaults.  EDDY_ENOENT/ENOTDIR/... if the root
 * cannot be resolved (done once, here). */
EDDY_EXTERN int eddy_thumb_service_init(eddy_loop_t *loop,
                                        eddy_thumb_service_t *svc,
                                        const eddy_thumb_options_t *opts);
/* Handles req if its path is /thumb (any method): returns 1 and answers
 * it, now or later.  Else returns 0 and leaves it to the caller. */
EDDY_EXTERN int eddy_thumb_serve(eddy_thumb_service_t *svc,
                                 eddy_http_req_t *req, eddy_http_res_t *res);
/* Frees the cache.  Only once no request is in flight: call it from the
 * HTTP server's close callback (the server waits for every response). */
EDDY_EXTERN void eddy_thumb_service_close(eddy_thumb_service_t *svc);
EDDY_EXTERN void eddy_thumb_service_stats(const eddy_thumb_service_t *svc,
                                          eddy_thumb_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
