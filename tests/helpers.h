/* Shared by the test files: one Criterion binary, IO tests per backend. */
#ifndef EDDY_TEST_HELPERS_H
#define EDDY_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eddy.h"

/* A backend's name, by value: Criterion runs each test in a new process
 * and copies parameters as bytes, so a pointer would not survive. */
typedef char eddy_backend_name_t[16];

/* The backends a loop can use on this machine, for parameterized tests. */
static inline struct criterion_test_params eddy_test_backend_params(void) {
  static const char *all[] = {"epoll", "io_uring"};
  static eddy_backend_name_t avail[2];
  size_t n = 0;
  /* EDDY_TEST_BACKENDS=epoll narrows the run (make valgrind does). */
  const char *only = getenv("EDDY_TEST_BACKENDS");
  for (size_t i = 0; i < 2; i++)
    if (eddy_backend_available(all[i]) &&
        (only == NULL || strstr(only, all[i]) != NULL))
      snprintf(avail[n++], sizeof avail[0], "%s", all[i]);
  return cr_make_param_array(eddy_backend_name_t, avail, n);
}

/* EDDY_IO_TEST(suite, name) { ... } declares a test that runs once per
 * available backend; inside, `*backend` names it and eddy_test_loop_init()
 * starts a loop on it. */
#define EDDY_IO_TEST(suite, name, ...)                                        \
  ParameterizedTestParameters(suite, name) {                                  \
    return eddy_test_backend_params();                                        \
  }                                                                           \
  ParameterizedTest(eddy_backend_name_t *backend, suite, name, ##__VA_ARGS__)

static inline void eddy_test_loop_init(eddy_loop_t *loop, const char *name) {
  setenv("EDDY_BACKEND", name, 1);
  int rc = eddy_loop_init(loop);
  cr_assert(eq(int, rc, 0), "eddy_loop_init(%s): %s", name, eddy_strerror(rc));
  cr_assert(eq(str, (char *)eddy_backend_name(loop), (char *)name));
}

/* Closes every test's loop the same way: run until closes finish, then
 * eddy_loop_close must succeed. */
static inline void eddy_test_loop_close(eddy_loop_t *loop) {
  eddy_run(loop, EDDY_RUN_DEFAULT);
  int rc = eddy_loop_close(loop);
  cr_assert(eq(int, rc, 0), "eddy_loop_close: %s", eddy_err_name(rc));
}

/* For tests of misuse: debug builds abort, release builds return errors. */
#ifdef NDEBUG
#define EDDY_TEST_MISUSE_SIGNAL 0
#else
#define EDDY_TEST_MISUSE_SIGNAL SIGABRT
#endif

#endif
