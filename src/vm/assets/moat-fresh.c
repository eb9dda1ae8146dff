/*
 * moat-fresh: gives a guest what must differ between sandboxes and cannot come from its
 * boot: fresh randomness and the host's time. A guest restored from a VM template starts
 * with the template's kernel random state and its clock of the moment the template was
 * saved, so every clone would draw the same "random" numbers and live in the past; a
 * guest booted under TCG also lets its clock fall behind while it boots. The agent runs
 * this before any container exists. Node cannot issue the ioctls, hence C.
 *
 * usage: moat-fresh UNIX_TIME_MS < SEED
 *   SEED: 32 to 512 bytes from the host's CSPRNG, credited to the guest's entropy pool
 *   (RNDADDENTROPY) and followed by an immediate reseed of the kernel's CRNG
 *   (RNDRESEEDCRNG), so no byte read afterwards depends on the template's state.
 *   UNIX_TIME_MS: the host's realtime clock, set as the guest's (CLOCK_REALTIME).
 * It exits 0, or 1 with a message on stderr.
 * It is built into the guest image: a change here needs an ASSETS_VERSION bump.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define SEED_MIN 32
#define SEED_MAX 512

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: moat-fresh UNIX_TIME_MS < SEED\n");
    return 1;
  }
  char *end;
  errno = 0;
  unsigned long long ms = strtoull(argv[1], &end, 10);
  if (errno != 0 || *end != '\0' || end == argv[1]) {
    fprintf(stderr, "moat-fresh: bad time \"%s\"\n", argv[1]);
    return 1;
  }

  struct {
    struct rand_pool_info info;
    unsigned char buf[SEED_MAX];
  } seed;
  size_t n = 0;
  while (n < SEED_MAX) {
    ssize_t r = read(0, seed.buf + n, SEED_MAX - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      perror("moat-fresh: read seed");
      return 1;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  if (n < SEED_MIN) {
    fprintf(stderr, "moat-fresh: seed of %zu bytes is shorter than %d\n", n, SEED_MIN);
    return 1;
  }
  seed.info.entropy_count = (int)(n * 8);
  seed.info.buf_size = (int)n;
  int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    perror("moat-fresh: open /dev/urandom");
    return 1;
  }
  if (ioctl(fd, RNDADDENTROPY, &seed) != 0) {
    perror("moat-fresh: RNDADDENTROPY");
    return 1;
  }
  if (ioctl(fd, RNDRESEEDCRNG) != 0) {
    perror("moat-fresh: RNDRESEEDCRNG");
    return 1;
  }
  close(fd);
  memset(&seed, 0, sizeof seed);

  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
  if (clock_settime(CLOCK_REALTIME, &ts) != 0) {
    perror("moat-fresh: clock_settime");
    return 1;
  }
  return 0;
}
