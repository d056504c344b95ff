/* Error names and messages, generated from EDDY_ERRNO_MAP.
 *
 * The X-macro expands into one constant table; both lookups read it, so a
 * code cannot have a name without a message.  The table is read-only, which
 * makes both functions thread-safe, and unknown codes get fixed strings
 * rather than NULL or a formatted buffer.
 */
#include "internal.h"

typedef struct {
  int code;
  const char *name;
  const char *msg;
} eddy__err_entry_t;

static const eddy__err_entry_t eddy__errors[] = {
#define EDDY__ERR_ENTRY(name, value, msg) {(value), #name, (msg)},
    EDDY_ERRNO_MAP(EDDY__ERR_ENTRY)
#undef EDDY__ERR_ENTRY
};

static const eddy__err_entry_t *eddy__err_find(int err) {
  size_t n = sizeof(eddy__errors) / sizeof(eddy__errors[0]);
  for (size_t i = 0; i < n; i++)
    if (eddy__errors[i].code == err)
      return &eddy__errors[i];
  return NULL;
}

const char *eddy_strerror(int err) {
  const eddy__err_entry_t *e = eddy__err_find(err);
  return e != NULL ? e->msg : "unknown error";
}

const char *eddy_err_name(int err) {
  const eddy__err_entry_t *e = eddy__err_find(err);
  return e != NULL ? e->name : "UNKNOWN";
}
