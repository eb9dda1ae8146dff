// The host's TSC rate in kHz, measured against CLOCK_MONOTONIC over 200 ms. The bench
// converts the TSC ticks a program counts inside a TCG guest with it: QEMU's TCG derives
// the guest's TSC from the host's, while the guest kernel's own clock falls back to
// jiffies there and runs slow when the host is loaded.
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void) {
  double t0 = now_ns();
  unsigned long long c0 = __rdtsc();
  struct timespec d = {0, 200 * 1000 * 1000};
  nanosleep(&d, NULL);
  double t1 = now_ns();
  unsigned long long c1 = __rdtsc();
  printf("%.0f\n", (double)(c1 - c0) / (t1 - t0) * 1e6);
  return 0;
}
