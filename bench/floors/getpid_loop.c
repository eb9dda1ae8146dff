// N raw getpid system calls (N from argv[1]); the workload of the getpid benchmark.
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  long acc = 0;
  for (long i = 0; i < n; i++) acc += syscall(SYS_getpid);
  return acc < 0;
}
