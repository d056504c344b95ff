/* The GraphicsMagick side of image jobs: runs on pool threads only.
 *
 * Rules kept here (docs/images.md explains them):
 *  - GM is initialised once per process, lazily, by the first job, without
 *    its signal handlers.  A fork after that leaves GM's (and OpenMP's)
 *    locks and threads behind in the child, so a child refuses jobs.
 *  - Each job has its own ExceptionInfo, ImageInfo and images; nothing GM
 *    allocates is shared between jobs or threads.
 *  - Every job pings first: the header's dimensions are checked against the
 *    job's limits before a pixel is decoded, which stops decompression
 *    bombs at the cost of reading one header twice.  GM's own memory, map
 *    and disk limits bound the pixel cache behind that.
 *  - GM's OpenMP threads are set per pool thread (OpenMP's thread count is
 *    a per-thread setting, which GM reads with omp_get_max_threads).
 *  - A JPEG source whose first operation shrinks it a lot is decoded with
 *    a size hint: libjpeg then scales in the DCT (1/2, 1/4, 1/8), the
 *    thumbnail fast path. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image_gm.h"
#include "io/image_internal.h"

/* ---- Process-wide state -------------------------------------------------- */

static pthread_once_t gm_once = PTHREAD_ONCE_INIT;
static int gm_init_err; /* 0, or the failure's status */
static char gm_init_msg[128];
static atomic_int gm_ready;         /* initialised in this process */
static atomic_int gm_forked;        /* this process forked after init */
static atomic_uint threads_wanted;  /* 0: automatic */
static unsigned threads_env;        /* EDDY_IMAGE_THREADS, read at init */
static atomic_int nice_wanted = -1; /* -1: EDDY_IMAGE_NICE, else 10 */
static int nice_env = 10;
static int nice_restorable; /* probed at init */

static void after_fork_child(void) {
  atomic_store(&gm_forked, 1);
}

/* A GM resource limit from the environment (MAGICK_LIMIT_*) wins over
 * ours: GM read it at initialisation. */
static void limit_unless_env(ResourceType type, const char *env,
                             magick_int64_t value) {
  if (getenv(env) == NULL)
    eddy__gm.SetMagickResourceLimit(type, value);
}

/* Whether a thread may lower its nice value again after raising it
 * (CAP_SYS_NICE, or RLIMIT_NICE high enough): tried on a thread of its own,
 * which may be left niced. */
static void *probe_nice(void *arg) {
  pid_t tid = gettid();
  errno = 0;
  int cur = getpriority(PRIO_PROCESS, (id_t)tid);
  *(int *)arg = errno == 0 && cur < 19 &&
                setpriority(PRIO_PROCESS, (id_t)tid, cur + 1) == 0 &&
                setpriority(PRIO_PROCESS, (id_t)tid, cur) == 0;
  return NULL;
}

static void read_env(void) {
  const char *env = getenv("EDDY_IMAGE_THREADS");
  threads_env = env != NULL ? (unsigned)strtoul(env, NULL, 10) : 0;
  env = getenv("EDDY_IMAGE_NICE");
  if (env != NULL)
    nice_env = atoi(env);
  pthread_t t;
  if (pthread_create(&t, NULL, probe_nice, &nice_restorable) == 0)
    pthread_join(t, NULL);
}

static void gm_init(void) {
  gm_init_err = eddy__gm_load(gm_init_msg, sizeof gm_init_msg);
  if (gm_init_err != 0)
    return;
  ExceptionInfo ex;
  eddy__gm.GetExceptionInfo(&ex);
  if (eddy__gm.InitializeMagickEx(NULL, MAGICK_OPT_NO_SIGNAL_HANDER, &ex) !=
      MagickPass) {
    gm_init_err = EDDY_EIO;
    snprintf(gm_init_msg, sizeof gm_init_msg, "InitializeMagickEx: %s",
             ex.reason != NULL ? ex.reason : "failed");
  }
  eddy__gm.DestroyExceptionInfo(&ex);
  if (gm_init_err != 0)
    return;
  /* The pixel cache lives in memory up to 1 GiB (all jobs together), then
   * in memory-mapped files up to 1 GiB more, then on disk up to 2 GiB;
   * past that a job fails (EDDY_IMAGE_ERESOURCE) instead of the machine
   * swapping.  A 40 MP image at 16 bits per sample takes 320 MB. */
  limit_unless_env(MemoryResource, "MAGICK_LIMIT_MEMORY", 1024LL << 20);
  limit_unless_env(MapResource, "MAGICK_LIMIT_MAP", 1024LL << 20);
  limit_unless_env(DiskResource, "MAGICK_LIMIT_DISK", 2048LL << 20);
  /* Read once: getenv on a pool thread races a setenv on another. */
  read_env();
  pthread_atfork(NULL, NULL, after_fork_child);
  atomic_store(&gm_ready, 1);
}

int eddy_image_initialized(void) {
  return atomic_load(&gm_ready);
}

void eddy_image_set_threads(unsigned n) {
  atomic_store(&threads_wanted, n);
}

/* One by default: perf/images measured 2 GM threads per job costing up to
 * twice the CPU per image (OpenMP's threads spin waiting for each other)
 * for no more images per second, whatever the pool size.  More cores are
 * better used by more pool threads (EDDY_THREADPOOL_SIZE). */
static unsigned threads_for(unsigned env) {
  unsigned n = atomic_load(&threads_wanted);
  if (n == 0)
    n = env;
  return n > 0 ? (n < 64 ? n : 64) : 1;
}

unsigned eddy_image_threads(void) {
  const char *env = getenv("EDDY_IMAGE_THREADS");
  return threads_for(env != NULL ? (unsigned)strtoul(env, NULL, 10) : 0);
}

/* OpenMP's thread count is per thread: set it on this pool thread when it
 * differs from what was last set here. */
static void apply_threads(void) {
  static __thread unsigned applied;
  unsigned n = threads_for(threads_env);
  if (n != applied) {
    if (eddy__gm.omp_set_num_threads != NULL)
      eddy__gm.omp_set_num_threads((int)n);
    applied = n;
  }
}

void eddy_image_set_nice(int n) {
  atomic_store(&nice_wanted, n < 0 ? 0 : n > 19 ? 19 : n);
}

#define NICE_UNCHANGED (-1000)

/* Raises this pool thread's nice value for the job, so the loop's thread
 * (at the process's own priority) wins a core whenever it wakes up: image
 * work is throughput, the loop is latency.  Only where it can be lowered
 * again afterwards: the thread runs file work next.  Returns the value to
 * restore, or NICE_UNCHANGED. */
static int nice_down(void) {
  int n = atomic_load(&nice_wanted);
  if (n < 0)
    n = nice_env;
  if (n <= 0 || !nice_restorable)
    return NICE_UNCHANGED;
  errno = 0;
  int cur = getpriority(PRIO_PROCESS, (id_t)gettid());
  if (errno != 0)
    return NICE_UNCHANGED;
  int to = cur + n > 19 ? 19 : cur + n;
  if (setpriority(PRIO_PROCESS, (id_t)gettid(), to) != 0)
    return NICE_UNCHANGED;
  return cur;
}

static void nice_up(int old) {
  if (old != NICE_UNCHANGED)
    setpriority(PRIO_PROCESS, (id_t)gettid(), old);
}

/* ---- Errors -------------------------------------------------------------- */

static void fail_gm(eddy_image_t *job, const ExceptionInfo *ex,
                    const char *stage) {
  ExceptionType sev = ex->severity;
  int base = (int)sev % 100;
  eddy_image_error err = EDDY_IMAGE_ECORRUPT;
  int status = EDDY_EINVAL;
  int has_desc = ex->description != NULL && ex->description[0] != '\0';
  if (base == ResourceLimitBase) {
    err = EDDY_IMAGE_ERESOURCE;
    status = EDDY_ENOMEM;
  } else if (strcmp(stage, "encode") == 0) {
    err = EDDY_IMAGE_EENCODE;
    status = EDDY_EIO;
  } else if (base != CorruptImageBase && strcmp(stage, "transform") != 0) {
    /* Reading failed other than on damaged data: no decoder for it, or no
     * header GM recognises. */
    err = EDDY_IMAGE_EFORMAT;
  }
  eddy__image_fail(job, err, status, "%s: %s%s%s%s", stage,
                   ex->reason != NULL ? ex->reason : "failed",
                   has_desc ? " (" : "", has_desc ? ex->description : "",
                   has_desc ? ")" : "");
}

/* ---- Input --------------------------------------------------------------- */

/* The format from the first bytes, among those eddy lets GM decode; NULL
 * for anything else.  GM would otherwise guess among all its coders, some
 * of which read other files or run programs on the source's say-so (SVG's
 * external references, MVG, MSL, delegates): not for bytes a client sent. */
static const char *sniff(const unsigned char *p, size_t n) {
  if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
    return "JPEG";
  if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
    return "PNG";
  if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
    return "GIF";
  if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
    return "WEBP";
  if (n >= 2 && p[0] == 'B' && p[1] == 'M')
    return "BMP";
  if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0))
    return "TIFF";
  return NULL;
}

/* Reads the whole file into *data (malloc); 0 or a failure recorded on the
 * job. */
static int read_source(eddy_image_t *job, unsigned char **data, size_t *len) {
  int fd = open(job->src_path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int e = -errno;
    if (fd >= 0)
      close(fd);
    eddy__image_fail(job, EDDY_IMAGE_EFILE, e, "%s: %s", job->src_path,
                     eddy_strerror(e));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    eddy__image_fail(job, EDDY_IMAGE_EFILE, EDDY_EISDIR, "%s: not a file",
                     job->src_path);
    return -1;
  }
  if ((uint64_t)st.st_size > job->limits.max_input) {
    close(fd);
    eddy__image_fail(job, EDDY_IMAGE_ETOO_LARGE, EDDY_EFBIG,
                     "%s: %lld bytes, over the %llu-byte input limit",
                     job->src_path, (long long)st.st_size,
                     (unsigned long long)job->limits.max_input);
    return -1;
  }
  size_t cap = (size_t)st.st_size, n = 0;
  unsigned char *buf = malloc(cap > 0 ? cap : 1);
  if (buf == NULL) {
    close(fd);
    eddy__image_fail(job, EDDY_IMAGE_ERESOURCE, EDDY_ENOMEM, "out of memory");
    return -1;
  }
  while (n < cap) { /* a file that shrank meanwhile reads short: fine */
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = -errno;
      close(fd);
      free(buf);
      eddy__image_fail(job, EDDY_IMAGE_EFILE, e, "%s: %s", job->src_path,
                       eddy_strerror(e));
      return -1;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  *data = buf;
  *len = n;
  return 0;
}

/* Pings the header: format and dimensions, then the limits.  0, or a
 * failure recorded on the job. */
static int ping(eddy_image_t *job, ImageInfo *info, const void *data,
                size_t len) {
  ExceptionInfo ex;
  eddy__gm.GetExceptionInfo(&ex);
  Image *img = eddy__gm.PingBlob(info, data, len, &ex);
  if (img == NULL) {
    fail_gm(job, &ex, "ping");
    eddy__gm.DestroyExceptionInfo(&ex);
    return -1;
  }
  eddy__gm.DestroyExceptionInfo(&ex);
  job->src_width = img->columns;
  job->src_height = img->rows;
  size_t n = strnlen(img->magick, sizeof job->src_format - 1);
  memcpy(job->src_format, img->magick, n);
  job->src_format[n] = '\0';
  eddy__gm.DestroyImageList(img);
  if (job->ping_only)
    return 0;
  const eddy_image_limits_t *l = &job->limits;
  uint64_t pixels = (uint64_t)job->src_width * job->src_height;
  if (pixels == 0 || job->src_width > l->max_width ||
      job->src_height > l->max_height || pixels > l->max_pixels) {
    eddy__image_fail(
        job, pixels == 0 ? EDDY_IMAGE_ECORRUPT : EDDY_IMAGE_ETOO_LARGE,
        pixels == 0 ? EDDY_EINVAL : EDDY_EFBIG,
        "%lux%lu %s: over the limits (%llu pixels, %lux%lu)", job->src_width,
        job->src_height, job->src_format, (unsigned long long)l->max_pixels,
        l->max_width, l->max_height);
    return -1;
  }
  return 0;
}

/* The size the first operation needs, if it shrinks the whole image; 0 if
 * the pipeline starts otherwise (a crop needs full-size pixels). */
static int first_target(const eddy_image_t *job, unsigned long *w,
                        unsigned long *h) {
  double sw = (double)job->src_width, sh = (double)job->src_height;
  for (unsigned i = 0; i < job->nops; i++) {
    const eddy_image_op_t *op = &job->ops[i];
    if (op->type == EDDY_IMAGE_OP_STRIP)
      continue;
    if (op->type != EDDY_IMAGE_OP_RESIZE &&
        op->type != EDDY_IMAGE_OP_THUMBNAIL && op->type != EDDY_IMAGE_OP_FIT)
      return 0;
    double sx = op->w > 0 ? op->w / sw : op->h / sh;
    double sy = op->h > 0 ? op->h / sh : sx;
    double s = sx > sy ? sx : sy; /* enough for contain and cover alike */
    *w = (unsigned long)(sw * s + 0.999);
    *h = (unsigned long)(sh * s + 0.999);
    return 1;
  }
  return 0;
}

/* Asks the JPEG decoder for at least twice the size the first operation
 * needs (so the final resize still has pixels to filter), when that is at
 * most half the source: libjpeg then decodes at 1/2, 1/4 or 1/8 scale. */
static void size_hint(const eddy_image_t *job, ImageInfo *info) {
  unsigned long w, h;
  char size[64];
  if (strcmp(job->src_format, "JPEG") != 0 || !first_target(job, &w, &h))
    return;
  w *= 2;
  h *= 2;
  if (w * 2 > job->src_width || h * 2 > job->src_height)
    return;
  snprintf(size, sizeof size, "%lux%lu", w, h);
  eddy__gm.CloneString(&info->size, size);
}

static Image *decode(eddy_image_t *job, ImageInfo *info, const void *data,
                     size_t len) {
  ExceptionInfo ex;
  eddy__gm.GetExceptionInfo(&ex);
  size_hint(job, info);
  Image *img = eddy__gm.BlobToImage(info, data, len, &ex);
  if (img == NULL) {
    fail_gm(job, &ex, "decode");
  } else if (!job->lenient && ex.severity == CorruptImageWarning) {
    /* A truncated JPEG decodes to grey rows with only a warning; a thumbnail
     * of it is not what anyone wants. */
    fail_gm(job, &ex, "decode");
    job->error = EDDY_IMAGE_ECORRUPT;
    job->status = EDDY_EINVAL;
    eddy__gm.DestroyImageList(img);
    img = NULL;
  }
  eddy__gm.DestroyExceptionInfo(&ex);
  /* Only the first frame (of a GIF, a TIFF...) is kept. */
  if (img != NULL && img->next != NULL) {
    Image *rest = img->next; /* unlinked first: GM rewinds a list */
    img->next = NULL;
    rest->previous = NULL;
    eddy__gm.DestroyImageList(rest);
  }
  return img;
}

/* ---- Operations ---------------------------------------------------------- */

/* A transformed image forgets its page offset (GM's +repage), so a crop
 * written as PNG is not placed on a larger virtual canvas. */
static void repage(Image *img) {
  img->page.x = img->page.y = 0;
  img->page.width = img->page.height = 0;
}

static Image *crop(Image *img, long x, long y, unsigned long w, unsigned long h,
                   ExceptionInfo *ex) {
  RectangleInfo r = {w, h, x, y};
  Image *out = eddy__gm.CropImage(img, &r, ex);
  if (out != NULL)
    repage(out);
  return out;
}

static unsigned long scaled(unsigned long n, double s) {
  unsigned long v = (unsigned long)((double)n * s + 0.5);
  return v > 0 ? v : 1;
}

static Image *fit(Image *img, const eddy_image_op_t *op, ExceptionInfo *ex) {
  double sx = (double)op->w / img->columns, sy = (double)op->h / img->rows;
  int cover = op->fit == EDDY_IMAGE_COVER;
  double s = cover ? (sx > sy ? sx : sy) : (sx < sy ? sx : sy);
  unsigned long w = scaled(img->columns, s), h = scaled(img->rows, s);
  if (cover) { /* rounding must not leave the box uncovered */
    w = w < op->w ? op->w : w;
    h = h < op->h ? op->h : h;
  }
  Image *t = eddy__gm.ThumbnailImage(img, w, h, ex);
  if (t == NULL || !cover || (w == op->w && h == op->h))
    return t;
  Image *c =
      crop(t, (long)(w - op->w) / 2, (long)(h - op->h) / 2, op->w, op->h, ex);
  eddy__gm.DestroyImage(t);
  return c;
}

/* One operation: the new image (the old one is the caller's to destroy),
 * the same image for in-place operations, or NULL with ex or the job's
 * error set. */
static Image *apply(eddy_image_t *job, Image *img, const eddy_image_op_t *op,
                    ExceptionInfo *ex) {
  unsigned long w = op->w, h = op->h;
  switch (op->type) {
  case EDDY_IMAGE_OP_CROP:
    if ((unsigned long)op->x + op->w > img->columns ||
        (unsigned long)op->y + op->h > img->rows) {
      eddy__image_fail(job, EDDY_IMAGE_EOP, EDDY_EINVAL,
                       "crop %lux%lu+%ld+%ld: outside the %lux%lu image", op->w,
                       op->h, op->x, op->y, img->columns, img->rows);
      return NULL;
    }
    return crop(img, op->x, op->y, op->w, op->h, ex);
  case EDDY_IMAGE_OP_RESIZE:
  case EDDY_IMAGE_OP_THUMBNAIL:
    if (w == 0)
      w = scaled(img->columns, (double)h / img->rows);
    if (h == 0)
      h = scaled(img->rows, (double)w / img->columns);
    return op->type == EDDY_IMAGE_OP_RESIZE
               ? eddy__gm.ResizeImage(img, w, h, LanczosFilter, 1.0, ex)
               : eddy__gm.ThumbnailImage(img, w, h, ex);
  case EDDY_IMAGE_OP_FIT:
    return fit(img, op, ex);
  case EDDY_IMAGE_OP_ROTATE: {
    Image *r = eddy__gm.RotateImage(img, op->degrees, ex);
    if (r != NULL)
      repage(r);
    return r;
  }
  case EDDY_IMAGE_OP_STRIP:
    if (eddy__gm.StripImage(img) != MagickPass)
      eddy__gm.GetImageException(img, ex);
    return img;
  }
  eddy__image_fail(job, EDDY_IMAGE_EOP, EDDY_EINVAL, "unknown operation %d",
                   (int)op->type);
  return NULL;
}

static Image *apply_all(eddy_image_t *job, Image *img) {
  for (unsigned i = 0; i < job->nops && img != NULL; i++) {
    ExceptionInfo ex;
    eddy__gm.GetExceptionInfo(&ex);
    Image *next = apply(job, img, &job->ops[i], &ex);
    if (next == NULL && job->error == EDDY_IMAGE_OK)
      fail_gm(job, &ex, "transform");
    else if (next != NULL && ex.severity >= ErrorException) {
      fail_gm(job, &ex, "transform");
      if (next != img)
        eddy__gm.DestroyImage(next);
      next = NULL;
    }
    eddy__gm.DestroyExceptionInfo(&ex);
    if (next != img)
      eddy__gm.DestroyImage(img);
    img = next;
  }
  return img;
}

/* ---- Output -------------------------------------------------------------- */

static eddy_image_format output_format(const eddy_image_t *job) {
  if (job->format != EDDY_IMAGE_AUTO)
    return job->format;
  int f = eddy_image_format_parse(job->src_format, strlen(job->src_format));
  return f > 0 ? (eddy_image_format)f : EDDY_IMAGE_JPEG;
}

static void encode(eddy_image_t *job, ImageInfo *info, Image *img) {
  static const char *const magick[] = {"JPEG", "JPEG", "PNG", "WEBP", "GIF"};
  eddy_image_format fmt = output_format(job);
  ExceptionInfo ex;
  eddy__gm.GetExceptionInfo(&ex);
  snprintf(img->magick, sizeof img->magick, "%s", magick[fmt]);
  snprintf(info->magick, sizeof info->magick, "%s", magick[fmt]);
  if (job->quality > 0)
    info->quality = (unsigned long)job->quality;
  job->out_format = fmt;
  job->width = img->columns;
  job->height = img->rows;
  if (job->dst_path != NULL) {
    snprintf(img->filename, sizeof img->filename, "%s:%s", magick[fmt],
             job->dst_path);
    if (eddy__gm.WriteImage(info, img) != MagickPass) {
      eddy__gm.GetImageException(img, &ex);
      fail_gm(job, &ex, "encode");
    }
  } else {
    size_t len = 0;
    void *blob = eddy__gm.ImageToBlob(info, img, &len, &ex);
    if (blob == NULL || len == 0) {
      fail_gm(job, &ex, "encode");
      free(blob);
    } else {
      /* GM allocates with its default allocator, malloc: the caller frees
       * the buffer with free(). */
      job->out = blob;
      job->out_len = len;
    }
  }
  eddy__gm.DestroyExceptionInfo(&ex);
}

/* ---- The job ------------------------------------------------------------- */

static void run_pipeline(eddy_image_t *job, const void *data, size_t len) {
  ImageInfo *info = eddy__gm.CloneImageInfo(NULL);
  if (info == NULL) {
    eddy__image_fail(job, EDDY_IMAGE_ERESOURCE, EDDY_ENOMEM, "out of memory");
    return;
  }
  const char *fmt = sniff(data, len);
  if (fmt == NULL) {
    eddy__image_fail(job, EDDY_IMAGE_EFORMAT, EDDY_EINVAL,
                     "not a JPEG, PNG, GIF, WebP, BMP or TIFF image");
    eddy__gm.DestroyImageInfo(info);
    return;
  }
  /* That decoder and no other: GM does not guess again. */
  snprintf(info->magick, sizeof info->magick, "%s", fmt);
  info->affirm = 1;
  info->subimage = 0; /* the first frame only, from the decoder on */
  info->subrange = 1;
  if (ping(job, info, data, len) == 0 && !job->ping_only) {
    Image *img = decode(job, info, data, len);
    img = img != NULL ? apply_all(job, img) : NULL;
    if (img != NULL) {
      encode(job, info, img);
      eddy__gm.DestroyImage(img);
    }
  }
  eddy__gm.DestroyImageInfo(info);
}

void eddy__image_execute(eddy_image_t *job) {
  if (atomic_load(&gm_forked)) {
    eddy__image_fail(job, EDDY_IMAGE_EFORK, EDDY_EBUSY,
                     "GraphicsMagick was initialised before this process "
                     "forked: initialise it in each process instead");
    return;
  }
  pthread_once(&gm_once, gm_init);
  if (gm_init_err != 0) {
    eddy__image_fail(job, EDDY_IMAGE_EUNAVAILABLE, gm_init_err, "%s",
                     gm_init_msg);
    return;
  }
  apply_threads();
  int old_nice = nice_down();
  const void *data = job->src_data;
  size_t len = job->src_len;
  unsigned char *owned = NULL;
  if (job->src_path != NULL && read_source(job, &owned, &len) != 0) {
    nice_up(old_nice);
    return;
  }
  if (owned != NULL)
    data = owned;
  if (len == 0)
    eddy__image_fail(job, EDDY_IMAGE_EEMPTY, EDDY_EINVAL, "empty input");
  else
    run_pipeline(job, data, len);
  free(owned);
  nice_up(old_nice);
}
