/* Error codes: names and messages come from EDDY_ERRNO_MAP. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "helpers.h"

typedef struct {
  int code;
  const char *name;
  const char *msg;
} err_row_t;

static const err_row_t rows[] = {
#define ROW(name, value, msg) {(value), #name, (msg)},
    EDDY_ERRNO_MAP(ROW)
#undef ROW
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

Test(errors, every_code_has_its_name_and_message) {
  for (size_t i = 0; i < NROWS; i++) {
    cr_assert(lt(int, rows[i].code, 0), "%s", rows[i].name);
    cr_assert(
        eq(str, (char *)eddy_err_name(rows[i].code), (char *)rows[i].name));
    cr_assert(
        eq(str, (char *)eddy_strerror(rows[i].code), (char *)rows[i].msg));
  }
}

Test(errors, codes_are_distinct) {
  for (size_t i = 0; i < NROWS; i++)
    for (size_t j = i + 1; j < NROWS; j++)
      cr_assert(ne(int, rows[i].code, rows[j].code), "%s and %s", rows[i].name,
                rows[j].name);
}

Test(errors, codes_are_negative_errno) {
  cr_assert(eq(int, EDDY_ENOENT, -ENOENT));
  cr_assert(eq(int, EDDY_EAGAIN, -EAGAIN));
  cr_assert(eq(int, EDDY_ECANCELED, -ECANCELED));
  cr_assert(eq(int, EDDY_EOF, -4095));
  cr_assert(eq(int, EDDY_EUNHANDLED, -4094));
}

Test(errors, name_round_trip) {
  cr_assert(eq(str, (char *)eddy_err_name(EDDY_ENOENT), "ENOENT"));
  cr_assert(
      eq(str, (char *)eddy_strerror(EDDY_ENOENT), "no such file or directory"));
  cr_assert(eq(str, (char *)eddy_err_name(-ENOENT), "ENOENT"));
  cr_assert(eq(str, (char *)eddy_err_name(EDDY_EOF), "EOF"));
  cr_assert(eq(str, (char *)eddy_strerror(EDDY_EOF), "end of file"));
  cr_assert(eq(str, (char *)eddy_err_name(EDDY_EUNHANDLED), "EUNHANDLED"));
}

Test(errors, unknown_code_is_named_unknown) {
  static const int unknown[] = {0,     1,       ENOENT,    -4096,
                                -4093, -100000, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    cr_assert(eq(str, (char *)eddy_err_name(unknown[i]), "UNKNOWN"), "%d",
              unknown[i]);
    cr_assert(eq(str, (char *)eddy_strerror(unknown[i]), "unknown error"), "%d",
              unknown[i]);
  }
}

/* The strings are constants: two threads get the same pointers. */
static void *lookup_all(void *arg) {
  const char **out = arg;
  for (size_t i = 0; i < NROWS; i++) {
    out[2 * i] = eddy_err_name(rows[i].code);
    out[2 * i + 1] = eddy_strerror(rows[i].code);
  }
  return NULL;
}

Test(errors, lookups_are_thread_safe) {
  const char *a[2 * NROWS], *b[2 * NROWS];
  pthread_t t;
  cr_assert(eq(int, pthread_create(&t, NULL, lookup_all, a), 0));
  lookup_all(b);
  cr_assert(eq(int, pthread_join(t, NULL), 0));
  for (size_t i = 0; i < 2 * NROWS; i++)
    cr_assert(eq(ptr, (void *)a[i], (void *)b[i]), "entry %zu", i);
}
