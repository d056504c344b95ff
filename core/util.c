/* Clocks and eventfds: the few syscalls every module needs. */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t eddy_hrtime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t eddy__clock_ms(void) {
  return eddy_hrtime() / 1000000u;
}

int eddy__eventfd(void) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

void eddy__eventfd_signal(int fd) {
  uint64_t one = 1;
  ssize_t n;
  do
    n = write(fd, &one, sizeof one);
  while (n < 0 && errno == EINTR);
  /* EAGAIN means the counter is at its maximum: the reader wakes anyway. */
}

void eddy__eventfd_drain(int fd) {
  uint64_t v;
  ssize_t n;
  do
    n = read(fd, &v, sizeof v);
  while (n < 0 && errno == EINTR);
}
