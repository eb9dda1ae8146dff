// A dynamically linked program (built WITHOUT -static): what glibc's ld.so and start-up do
// for it (libraries mapped from files, relocations, RELRO, TLS, IRELATIVE ifuncs picked with
// the CPU's features), then everyday libc: stdio, malloc of small and large blocks, qsort,
// the time without a vDSO, the user database, and dladdr naming the library printf is in.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static __thread int counter = 41;

static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

int main(int argc, char **argv) {
  printf("hello from a dynamic program, argc=%d\n", argc);
  printf("GREETING=%s\n", getenv("GREETING") ? getenv("GREETING") : "(none)");
  counter++;
  printf("tls %d\n", counter);

  char *small = malloc(100);
  char *big = malloc(8 << 20); // above the mmap threshold: an anonymous mapping
  memset(big, 'x', 8 << 20);
  strcpy(small, "malloc ok");
  printf("%s %c\n", small, big[(8 << 20) - 1]);
  free(big);
  free(small);

  int v[] = {5, 3, 9, 1, 7};
  qsort(v, 5, sizeof v[0], cmp);
  printf("sorted %d %d %d %d %d\n", v[0], v[1], v[2], v[3], v[4]);
  printf("float %.3f\n", 22.0 / 7.0);

  // No vDSO under the userkernel: glibc makes the system calls, and the answers are sane.
  struct timespec ts;
  struct timeval tv;
  int ok = clock_gettime(CLOCK_REALTIME, &ts) == 0 && gettimeofday(&tv, NULL) == 0 &&
           ts.tv_sec > 1700000000 && tv.tv_sec > 1700000000 && time(NULL) > 1700000000;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  printf("time ok %d\n", ok && ts.tv_sec >= 0);

  struct passwd *pw = getpwuid(0);
  printf("uid 0 is %s\n", pw ? pw->pw_name : "(unknown)");

  Dl_info info;
  if (dladdr((void *)printf, &info) && info.dli_fname)
    printf("printf lives in %s\n", info.dli_fname);
  printf("pagesize %ld\n", sysconf(_SC_PAGESIZE));
  return 0;
}
