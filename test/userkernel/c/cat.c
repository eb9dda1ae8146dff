// Copies stdin to stdout with read/write, in odd-sized pieces, and counts bytes.
#include <stdio.h>
#include <unistd.h>

int main(void) {
  char buf[777];
  long total = 0;
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0) return perror("read"), 1;
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(1, buf + off, n - off);
      if (w <= 0) return perror("write"), 1;
      off += w;
    }
    total += n;
  }
  fprintf(stderr, "copied %ld\n", total);
  return 0;
}
