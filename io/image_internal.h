/* What the io/image*.c files share. */
#ifndef EDDY_IMAGE_INTERNAL_H
#define EDDY_IMAGE_INTERNAL_H

#include "core/internal.h"

/* Runs the job's pipeline (or ping) with GraphicsMagick on the calling
 * pool thread, filling in the job's results, error and status
 * (io/image_gm.c).  Touches nothing but the job. */
void eddy__image_execute(eddy_image_t *job);

/* Records an error on the job: its exact kind, the coarse status and a
 * message (printf-style). */
void eddy__image_fail(eddy_image_t *job, eddy_image_error err, int status,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
