// abort() (SIGABRT, whose default action dumps core), with RLIMIT_CORE raised first when
// argv[1] is "core": the wait status has the core bit only then, as on Linux with a core
// file pattern. (Run under the userkernel only: natively it would write a core file.)
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "core") == 0) {
    struct rlimit rl = {1 << 20, 1 << 20};
    if (setrlimit(RLIMIT_CORE, &rl) != 0) return 3;
  }
  abort();
}
