// mmap of files as ld.so and programs use it: private copies (whole pages of the file, zero
// past its end), private writes that never reach the file, read-only shared mappings, and
// PROT_EXEC honoured (code read from a file and called). With "shared-write" as the second
// argument: what a writable MAP_SHARED mapping of a file gives (the userkernel refuses it).
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE 10000

static int expect(int fd, long off) {
  unsigned char c;
  return pread(fd, &c, 1, off) == 1 ? c : -1;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) return perror("open"), 2;
  if (argc > 2 && strcmp(argv[2], "shared-write") == 0) {
    int rw = open(argv[1], O_RDWR);
    void *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
    printf("shared writable: %s\n", p == MAP_FAILED ? strerror(errno) : "mapped");
    void *q = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("shared writable of a read-only descriptor: %s\n", q == MAP_FAILED ? strerror(errno) : "mapped");
    return 0;
  }
  unsigned char *p = mmap(0, 100, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) return perror("mmap"), 1;
  // The whole page is the file's, not only the 100 bytes asked for.
  printf("short map: %d %d %d %d\n", p[0] == expect(fd, 0), p[99] == expect(fd, 99), p[200] == expect(fd, 200),
         p[4095] == expect(fd, 4095));
  unsigned char *q = mmap(0, 8192, PROT_READ, MAP_PRIVATE, fd, 4096);
  printf("offset map: %d %d, past the end zero %d\n", q[0] == expect(fd, 4096),
         q[SIZE - 4096 - 1] == expect(fd, SIZE - 1), q[SIZE - 4096] == 0 && q[8191] == 0);
  unsigned char *w = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int before = w[10];
  w[10] = (unsigned char)(before + 1);
  printf("private write: seen %d, file unchanged %d\n", w[10] == (unsigned char)(before + 1),
         expect(fd, 10) == before);
  unsigned char *s = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 4096);
  printf("shared read-only: %d\n", s != MAP_FAILED && s[5] == expect(fd, 4096 + 5));
  printf("unmapped: %d\n", munmap(p, 100) == 0 && munmap(q, 8192) == 0 && munmap(w, 4096) == 0);

  // Code from a file: mov eax, 42; ret.
  const unsigned char code[] = {0xb8, 0x2a, 0, 0, 0, 0xc3};
  char path[] = "/tmp/mmapfile-code-XXXXXX";
  int cfd = mkstemp(path);
  if (cfd < 0 || write(cfd, code, sizeof code) != sizeof code) return perror("code file"), 1;
  unlink(path);
  void *x = mmap(0, sizeof code, PROT_READ | PROT_EXEC, MAP_PRIVATE, cfd, 0);
  if (x == MAP_FAILED) return perror("mmap exec"), 1;
  printf("code from a file returns %d\n", ((int (*)(void))x)());
  return 0;
}
