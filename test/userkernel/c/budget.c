// Maps 8 MiB anonymous chunks (at most 2 GiB) until mmap fails, then reports how many it got and why it
// stopped; brk is tried too. Under a sandbox memory budget both must fail with ENOMEM.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
  const size_t chunk = 8u << 20;
  int n = 0;
  void *first = NULL;
  for (; n < 256; n++) {
    void *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    if (!first) first = p;
    memset(p, 1, 4096);
  }
  printf("mapped %d MiB, then %s\n", n * 8, strerror(errno));
  errno = 0;
  void *b = sbrk(64u << 20);
  printf("sbrk 64 MiB: %s\n", b == (void *)-1 ? strerror(errno) : "ok");
  // What is given back can be mapped again.
  if (first && munmap(first, chunk) == 0) {
    void *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("after munmap: %s\n", p == MAP_FAILED ? strerror(errno) : "ok");
  }
  return 0;
}
