// Exercises the memory syscalls through libc and directly; prints only address-free facts
// so the output is identical natively and under the userkernel.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned long sum(const unsigned char *p, size_t n) {
  unsigned long s = 0;
  for (size_t i = 0; i < n; i++) s = s * 31 + p[i];
  return s;
}

int main(void) {
  // Many small blocks (brk heap) and a few large ones (mmap'd by malloc).
  enum { SMALL = 2000 };
  char *small[SMALL];
  for (int i = 0; i < SMALL; i++) {
    small[i] = malloc(16 + i % 200);
    memset(small[i], i & 0xff, 16 + i % 200);
  }
  unsigned long s = 0;
  for (int i = 0; i < SMALL; i++) s += sum((unsigned char *)small[i], 16 + i % 200);
  printf("small sum %lu\n", s);
  for (int i = 0; i < SMALL; i += 2) free(small[i]);

  size_t big = 8 << 20;
  unsigned char *b = malloc(big);
  for (size_t i = 0; i < big; i += 4096) b[i] = (unsigned char)(i >> 12);
  printf("big sum %lu\n", sum(b, big));
  // realloc of an mmap'd chunk goes through mremap.
  b = realloc(b, 64 << 20);
  printf("realloc kept %lu\n", sum(b, big));
  b[(64 << 20) - 1] = 7;
  printf("realloc tail %d\n", b[(64 << 20) - 1]);
  free(b);

  // Direct mmap / mprotect / mremap / munmap.
  size_t len = 16 * 4096;
  unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return perror("mmap"), 1;
  printf("fresh zero %d\n", sum(m, len) == 0);
  memset(m, 0xab, len);
  printf("mprotect ro %d\n", mprotect(m, len, PROT_READ));
  printf("mprotect rw %d\n", mprotect(m + 4096, 4096, PROT_READ | PROT_WRITE));
  m[4096] = 1;
  // Back to one protection: the three pieces merge again, and mremap needs a single mapping.
  printf("mprotect merge %d\n", mprotect(m, len, PROT_READ | PROT_WRITE));
  unsigned char *g = mremap(m, len, 4 * len, MREMAP_MAYMOVE);
  if (g == MAP_FAILED) return perror("mremap"), 1;
  printf("mremap kept %d %d %d\n", g[0], g[4096], g[len - 1]);
  printf("mremap grown zero %d\n", sum(g + len, 3 * len) == 0);
  printf("madvise %d\n", madvise(g + len, len, MADV_DONTNEED));
  g[len] = 9;
  printf("madvise dontneed zero %d\n", madvise(g + len, 4096, MADV_DONTNEED) == 0 && g[len] == 0);
  printf("munmap %d\n", munmap(g, 4 * len));
  printf("munmap unaligned %d\n", munmap((char *)g + 1, 4096) == -1);

  // MAP_FIXED into a hole we own, then shrink with mremap.
  unsigned char *h = mmap(NULL, 8 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char *f = mmap(h + 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  printf("fixed at hint %d\n", f == h + 4096);
  f[0] = 42;
  printf("fixed write %d\n", f[0]);
  printf("shrink %d\n", mremap(h, 8 * 4096, 2 * 4096, 0) == h);
  munmap(h, 2 * 4096);

  // The program break.
  void *top = sbrk(0);
  printf("sbrk grow %d\n", sbrk(1 << 20) == top);
  memset(top, 1, 1 << 20);
  printf("sbrk shrink %d\n", sbrk(-(1 << 20)) != (void *)-1 && sbrk(0) == top);
  return 0;
}
