/* GraphicsMagick's API as io/image_gm.c uses it: a table of function
 * pointers filled from the library at run time (io/image_gm_load.c).
 *
 * Why not link it: libeddy would then load GM, and with it libjxl and
 * libhwy, into every program that uses eddy, images or not; and libhwy's
 * constructor executes RDTSCP, which valgrind 3.19 cannot run, so no
 * program linked with eddy (the test binary included) could run under
 * valgrind at all.  GM's headers are still used, for its types and the
 * functions' exact prototypes. */
#ifndef EDDY_IMAGE_GM_H
#define EDDY_IMAGE_GM_H

#include <magick/api.h>

#define EDDY__GM_FUNCS(X)                                                      \
  X(InitializeMagickEx)                                                        \
  X(GetExceptionInfo)                                                          \
  X(DestroyExceptionInfo)                                                      \
  X(SetMagickResourceLimit)                                                    \
  X(CloneImageInfo)                                                            \
  X(DestroyImageInfo)                                                          \
  X(PingBlob)                                                                  \
  X(BlobToImage)                                                               \
  X(DestroyImageList)                                                          \
  X(DestroyImage)                                                              \
  X(CloneString)                                                               \
  X(CropImage)                                                                 \
  X(ResizeImage)                                                               \
  X(ThumbnailImage)                                                            \
  X(RotateImage)                                                               \
  X(StripImage)                                                                \
  X(GetImageException)                                                         \
  X(WriteImage)                                                                \
  X(ImageToBlob)

typedef struct {
#define EDDY__GM_PTR(f) __typeof__(&f) f;
  EDDY__GM_FUNCS(EDDY__GM_PTR)
#undef EDDY__GM_PTR
  /* OpenMP's, from GM's own libgomp; NULL for a GM built without it. */
  void (*omp_set_num_threads)(int n);
} eddy__gm_api_t;

extern eddy__gm_api_t eddy__gm;

/* Loads GM and fills eddy__gm, once; 0, or EDDY_ENOSYS with a message. */
int eddy__gm_load(char *msg, size_t cap);

#endif
