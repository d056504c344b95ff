/* Loading GraphicsMagick at run time: io/image_gm.h says why.  Called
 * once, under io/image_gm.c's pthread_once; the library stays loaded for
 * the life of the process. */
#include <dlfcn.h>
#include <stdio.h>

#include "core/internal.h"
#include "io/image_gm.h"

eddy__gm_api_t eddy__gm;

#define EDDY__STR2(x) #x
#define EDDY__STR(x) EDDY__STR2(x) /* after expansion: GM may prefix names */

int eddy__gm_load(char *msg, size_t cap) {
  /* The Q16 build is Debian's; the others for other builds, and the
   * development symlink last. */
  static const char *const names[] = {
      "libGraphicsMagick-Q16.so.3", "libGraphicsMagick-Q8.so.3",
      "libGraphicsMagick-Q32.so.3", "libGraphicsMagick.so.3",
      "libGraphicsMagick.so"};
  void *h = NULL;
  for (size_t i = 0; h == NULL && i < sizeof names / sizeof names[0]; i++)
    h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    snprintf(msg, cap, "GraphicsMagick could not be loaded: %s", dlerror());
    return EDDY_ENOSYS;
  }
#define EDDY__GM_LOAD(f)                                                       \
  if ((*(void **)&eddy__gm.f = dlsym(h, EDDY__STR(f))) == NULL) {              \
    snprintf(msg, cap, "GraphicsMagick: %s", dlerror());                       \
    return EDDY_ENOSYS;                                                        \
  }
  EDDY__GM_FUNCS(EDDY__GM_LOAD)
#undef EDDY__GM_LOAD
  *(void **)&eddy__gm.omp_set_num_threads = dlsym(h, "omp_set_num_threads");
  return 0;
}
