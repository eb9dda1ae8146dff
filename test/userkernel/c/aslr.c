// Prints where things landed: stack, heap (brk), an mmap, and the code itself.
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
  int local = 0;
  void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("stack %p\nbrk %p\nmmap %p\ncode %p\n", (void *)&local, sbrk(0), m, (void *)main);
  return 0;
}
