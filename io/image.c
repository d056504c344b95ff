/* Image jobs: building the pipeline on the caller's thread, running it on
 * the pool, calling back on the loop's thread.
 *
 * The job is the only thing the worker touches: the caller fills it in
 * (copies of paths, the ops array), the worker fills in the results, and
 * the pool's completion queue (its lock) orders the two.  The GM side is
 * io/image_gm.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/image_internal.h"

void eddy_image_init(eddy_image_t *job) {
  memset(job, 0, sizeof *job);
  job->limits.max_pixels = 40000000;
  job->limits.max_width = 16384;
  job->limits.max_height = 16384;
  job->limits.max_input = 64u << 20;
}

void eddy_image_cleanup(eddy_image_t *job) {
  free(job->src_path);
  free(job->dst_path);
  free(job->out);
  job->src_path = NULL;
  job->dst_path = NULL;
  job->out = NULL;
  job->out_len = 0;
}

unsigned char *eddy_image_take_output(eddy_image_t *job, size_t *len) {
  unsigned char *out = job->out;
  if (len != NULL)
    *len = job->out_len;
  job->out = NULL;
  job->out_len = 0;
  return out;
}

static int has_source(const eddy_image_t *job) {
  return job->src_path != NULL || job->src_data != NULL;
}

int eddy_image_source_file(eddy_image_t *job, const char *path) {
  if (job == NULL || path == NULL || *path == '\0' || has_source(job))
    return EDDY_EINVAL;
  job->src_path = strdup(path);
  return job->src_path != NULL ? 0 : EDDY_ENOMEM;
}

/* A zero-length buffer is accepted here and refused by the job as
 * EDDY_IMAGE_EEMPTY, like an empty file: the caller learns the same way. */
int eddy_image_source_buffer(eddy_image_t *job, const void *data, size_t len) {
  if (job == NULL || (data == NULL && len > 0) || has_source(job))
    return EDDY_EINVAL;
  job->src_data = data != NULL ? data : "";
  job->src_len = len;
  return 0;
}

static eddy_image_op_t *add_op(eddy_image_t *job, eddy_image_op_type type) {
  if (job->nops == EDDY_IMAGE_MAX_OPS)
    return NULL;
  eddy_image_op_t *op = &job->ops[job->nops++];
  memset(op, 0, sizeof *op);
  op->type = type;
  return op;
}

int eddy_image_crop(eddy_image_t *job, long x, long y, unsigned long w,
                    unsigned long h) {
  if (w == 0 || h == 0 || x < 0 || y < 0)
    return EDDY_EINVAL;
  eddy_image_op_t *op = add_op(job, EDDY_IMAGE_OP_CROP);
  if (op == NULL)
    return EDDY_ENOBUFS;
  op->x = x;
  op->y = y;
  op->w = w;
  op->h = h;
  return 0;
}

static int add_sized(eddy_image_t *job, eddy_image_op_type type,
                     unsigned long w, unsigned long h,
                     eddy_image_fit_mode fit) {
  if (w == 0 && h == 0)
    return EDDY_EINVAL;
  eddy_image_op_t *op = add_op(job, type);
  if (op == NULL)
    return EDDY_ENOBUFS;
  op->w = w;
  op->h = h;
  op->fit = fit;
  return 0;
}

int eddy_image_resize(eddy_image_t *job, unsigned long w, unsigned long h) {
  return add_sized(job, EDDY_IMAGE_OP_RESIZE, w, h, EDDY_IMAGE_CONTAIN);
}

int eddy_image_thumbnail(eddy_image_t *job, unsigned long w, unsigned long h) {
  return add_sized(job, EDDY_IMAGE_OP_THUMBNAIL, w, h, EDDY_IMAGE_CONTAIN);
}

/* Both sides are needed: a box with one side free is a plain resize. */
int eddy_image_fit(eddy_image_t *job, unsigned long w, unsigned long h,
                   eddy_image_fit_mode mode) {
  if (w == 0 || h == 0 ||
      (mode != EDDY_IMAGE_CONTAIN && mode != EDDY_IMAGE_COVER))
    return EDDY_EINVAL;
  return add_sized(job, EDDY_IMAGE_OP_FIT, w, h, mode);
}

int eddy_image_rotate(eddy_image_t *job, double degrees) {
  if (!(degrees > -3600.0 && degrees < 3600.0)) /* also NaN */
    return EDDY_EINVAL;
  eddy_image_op_t *op = add_op(job, EDDY_IMAGE_OP_ROTATE);
  if (op == NULL)
    return EDDY_ENOBUFS;
  op->degrees = degrees;
  return 0;
}

int eddy_image_strip(eddy_image_t *job) {
  return add_op(job, EDDY_IMAGE_OP_STRIP) != NULL ? 0 : EDDY_ENOBUFS;
}

int eddy_image_output(eddy_image_t *job, eddy_image_format fmt, int quality) {
  if ((unsigned)fmt > EDDY_IMAGE_GIF || quality < 0 || quality > 100)
    return EDDY_EINVAL;
  job->format = fmt;
  job->quality = quality;
  return 0;
}

int eddy_image_output_file(eddy_image_t *job, const char *path) {
  if (path == NULL || *path == '\0' || job->dst_path != NULL)
    return EDDY_EINVAL;
  job->dst_path = strdup(path);
  return job->dst_path != NULL ? 0 : EDDY_ENOMEM;
}

void eddy__image_fail(eddy_image_t *job, eddy_image_error err, int status,
                      const char *fmt, ...) {
  va_list ap;
  job->error = err;
  job->status = status;
  va_start(ap, fmt);
  vsnprintf(job->message, sizeof job->message, fmt, ap);
  va_end(ap);
}

/* ---- Running on the pool ------------------------------------------------- */

static void image_work(eddy_work_t *w) {
  eddy__image_execute(eddy__container_of(w, eddy_image_t, work));
}

static void image_after(eddy_work_t *w, int status) {
  eddy_image_t *job = eddy__container_of(w, eddy_image_t, work);
  if (status == EDDY_ECANCELED)
    eddy__image_fail(job, EDDY_IMAGE_ECANCELED, status, "cancelled");
  /* The callback may free or reuse the job: nothing touches it after. */
  job->cb(job, job->status);
}

static int submit(eddy_loop_t *loop, eddy_image_t *job, eddy_image_cb cb,
                  int ping) {
  if (loop == NULL || job == NULL || cb == NULL || !has_source(job))
    return EDDY_EINVAL;
  free(job->out);
  job->out = NULL;
  job->out_len = 0;
  job->loop = loop;
  job->cb = cb;
  job->ping_only = ping;
  job->status = 0;
  job->error = EDDY_IMAGE_OK;
  job->message[0] = '\0';
  job->src_width = job->src_height = job->width = job->height = 0;
  job->src_format[0] = '\0';
  memset(&job->work, 0, sizeof job->work);
  return eddy_queue_work(loop, &job->work, EDDY_WORK_SLOW, image_work,
                         image_after);
}

int eddy_image_run(eddy_loop_t *loop, eddy_image_t *job, eddy_image_cb cb) {
  return submit(loop, job, cb, 0);
}

int eddy_image_ping(eddy_loop_t *loop, eddy_image_t *job, eddy_image_cb cb) {
  return submit(loop, job, cb, 1);
}

int eddy_image_cancel(eddy_image_t *job) {
  if (job == NULL)
    return EDDY_EINVAL;
  return eddy_cancel(&job->work);
}

/* ---- Names --------------------------------------------------------------- */

int eddy_image_format_parse(const char *name, size_t len) {
  static const struct {
    const char *name;
    eddy_image_format fmt;
  } names[] = {{"jpg", EDDY_IMAGE_JPEG}, {"jpeg", EDDY_IMAGE_JPEG},
               {"png", EDDY_IMAGE_PNG},  {"webp", EDDY_IMAGE_WEBP},
               {"gif", EDDY_IMAGE_GIF},  {"auto", EDDY_IMAGE_AUTO}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i].name) == len &&
        strncasecmp(names[i].name, name, len) == 0)
      return (int)names[i].fmt;
  return -1;
}

const char *eddy_image_format_mime(eddy_image_format fmt) {
  switch (fmt) {
  case EDDY_IMAGE_JPEG:
    return "image/jpeg";
  case EDDY_IMAGE_PNG:
    return "image/png";
  case EDDY_IMAGE_WEBP:
    return "image/webp";
  case EDDY_IMAGE_GIF:
    return "image/gif";
  default:
    return "application/octet-stream";
  }
}

const char *eddy_image_error_name(eddy_image_error err) {
  static const char *const names[] = {
      "OK",         "ECANCELED", "EFILE", "EEMPTY",  "EFORMAT", "ECORRUPT",
      "ETOO_LARGE", "ERESOURCE", "EOP",   "EENCODE", "EFORK",   "EUNAVAILABLE"};
  if ((unsigned)err < sizeof names / sizeof names[0])
    return names[err];
  return "unknown";
}
