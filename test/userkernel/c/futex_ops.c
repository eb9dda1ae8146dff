// futex(2) through the raw system call, in one thread: the word checks (EAGAIN), timeouts
// (relative for FUTEX_WAIT, absolute for WAIT_BITSET, on either clock), wakes and requeues
// that find no waiter, every FUTEX_WAKE_OP operation and comparison, argument errors, and
// the robust-list calls. Prints results and errno names only, never times.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000LL

static const char *E(long r) {
  if (r == 0) return "0";
  if (r > 0) return "positive";
  return strerrorname_np(errno);
}

static long futex(uint32_t *uaddr, int op, uint32_t val, const void *timeout, uint32_t *uaddr2, uint32_t val3) {
  return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

static long long now(clockid_t c) {
  struct timespec t;
  syscall(SYS_clock_gettime, c, &t);
  return t.tv_sec * NSEC + t.tv_nsec;
}

static struct timespec ts(long long ns) {
  struct timespec t = {ns / NSEC, ns % NSEC};
  return t;
}

static uint32_t word = 7, word2 = 0;

static void waits(void) {
  printf("wait mismatch private: %s\n", E(futex(&word, FUTEX_WAIT_PRIVATE, 8, NULL, NULL, 0)));
  printf("wait mismatch shared: %s\n", E(futex(&word, FUTEX_WAIT, 8, NULL, NULL, 0)));
  printf("wait_bitset mismatch: %s\n", E(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 8, NULL, NULL, 1)));

  struct timespec rel = ts(30000000);
  long long a = now(CLOCK_MONOTONIC);
  long r = futex(&word, FUTEX_WAIT_PRIVATE, 7, &rel, NULL, 0);
  long long b = now(CLOCK_MONOTONIC);
  printf("wait 30ms relative: %s long enough %d\n", E(r), b - a >= 30000000);

  struct timespec abs = ts(now(CLOCK_MONOTONIC) + 30000000);
  r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 7, &abs, NULL, FUTEX_BITSET_MATCH_ANY);
  printf("wait_bitset absolute monotonic: %s reached %d\n", E(r), now(CLOCK_MONOTONIC) >= abs.tv_sec * NSEC + abs.tv_nsec);

  struct timespec absr = ts(now(CLOCK_REALTIME) + 30000000);
  r = futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 7, &absr, NULL, FUTEX_BITSET_MATCH_ANY);
  printf("wait_bitset absolute realtime: %s reached %d\n", E(r), now(CLOCK_REALTIME) >= absr.tv_sec * NSEC + absr.tv_nsec);

  a = now(CLOCK_MONOTONIC);
  r = futex(&word, FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME, 7, &rel, NULL, 0);
  b = now(CLOCK_MONOTONIC);
  printf("wait realtime flag relative: %s long enough %d\n", E(r), b - a >= 30000000);

  struct timespec past = ts(1);
  printf("wait_bitset in the past: %s\n", E(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 7, &past, NULL, ~0u)));

  struct timespec bad = {0, NSEC};
  printf("wait bad timespec: %s\n", E(futex(&word, FUTEX_WAIT_PRIVATE, 7, &bad, NULL, 0)));
  printf("wait bad timeout pointer: %s\n", E(futex(&word, FUTEX_WAIT_PRIVATE, 7, (void *)8, NULL, 0)));
  printf("wait_bitset zero bitset: %s\n", E(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 7, NULL, NULL, 0)));
  printf("wait unmapped: %s\n", E(futex((uint32_t *)8, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
  printf("wait unaligned: %s\n", E(futex((uint32_t *)((char *)&word + 1), FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
}

static void wakes(void) {
  printf("wake none waiting: %ld\n", futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
  printf("wake shared none waiting: %ld\n", futex(&word, FUTEX_WAKE, 100, NULL, NULL, 0));
  printf("wake_bitset zero bitset: %s\n", E(futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0)));
  printf("wake_bitset: %ld\n", futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 3));
  printf("wake private unmapped: %ld\n", futex((uint32_t *)0x1000, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
  printf("wake shared unmapped: %s\n", E(futex((uint32_t *)0x1000, FUTEX_WAKE, 1, NULL, NULL, 0)));
  printf("wake unaligned: %s\n", E(futex((uint32_t *)((char *)&word + 2), FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
  printf("wake with realtime flag: %s\n", E(futex(&word, FUTEX_WAKE_PRIVATE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0)));
  printf("unknown op: %s\n", E(futex(&word, 99, 1, NULL, NULL, 0)));
}

static void requeues(void) {
  printf("requeue none waiting: %ld\n", futex(&word, FUTEX_REQUEUE_PRIVATE, 1, (void *)1, &word2, 0));
  printf("requeue negative count: %s\n", E(futex(&word, FUTEX_REQUEUE_PRIVATE, 1, (void *)-1L, &word2, 0)));
  printf("cmp_requeue mismatch: %s\n", E(futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &word2, 8)));
  printf("cmp_requeue match: %ld\n", futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &word2, 7));
  printf("cmp_requeue unmapped: %s\n", E(futex((uint32_t *)8, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &word2, 7)));
}

static void wake_ops(void) {
  static const char *ops[] = {"SET", "ADD", "OR", "ANDN", "XOR"};
  static const char *cmps[] = {"EQ", "NE", "LT", "LE", "GT", "GE"};
  for (int op = 0; op <= 4; op++) {
    for (int cmp = 0; cmp <= 5; cmp++) {
      word2 = 0x0f0f;
      long r = futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &word2, FUTEX_OP(op, 0x3c, cmp, 0x0f0f));
      printf("wake_op %s %s: %ld word2 %#x\n", ops[op], cmps[cmp], r, word2);
    }
  }
  word2 = 5;
  long r = futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &word2, FUTEX_OP(FUTEX_OP_OR | (FUTEX_OP_OPARG_SHIFT), 4, 0, 0));
  printf("wake_op OR shift: %ld word2 %#x\n", r, word2);
  word2 = 5;
  r = futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &word2, FUTEX_OP(FUTEX_OP_ADD, -3 & 0xfff, FUTEX_OP_CMP_LT, -1 & 0xfff));
  printf("wake_op ADD negative: %ld word2 %#x\n", r, word2);
  word2 = 5;
  printf("wake_op bad op: %s word2 %#x\n", E(futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &word2, 6u << 28)), word2);
  word2 = 5;
  printf("wake_op bad cmp: %s word2 %#x\n", E(futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &word2, FUTEX_OP(FUTEX_OP_ADD, 1, 7, 0))), word2);
  printf("wake_op read-only word: %s\n", E(futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, (uint32_t *)"ro", 0)));
}

static void shared_words(void) {
  uint32_t *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  *s = 3;
  printf("shared mapping wait mismatch: %s\n", E(futex(s, FUTEX_WAIT, 4, NULL, NULL, 0)));
  struct timespec rel = ts(10000000);
  printf("shared mapping wait timeout: %s\n", E(futex(s, FUTEX_WAIT, 3, &rel, NULL, 0)));
  printf("shared mapping wake: %ld\n", futex(s, FUTEX_WAKE, 1, NULL, NULL, 0));
}

static void robust(void) {
  struct robust_list_head head = {{&head.list}, 0, NULL};
  printf("set_robust_list bad size: %s\n", E(syscall(SYS_set_robust_list, &head, sizeof head + 1)));
  printf("set_robust_list: %s\n", E(syscall(SYS_set_robust_list, &head, sizeof head)));
  struct robust_list_head *got = NULL;
  size_t len = 0;
  long r = syscall(SYS_get_robust_list, 0, &got, &len);
  printf("get_robust_list self: %s same %d len %zu\n", E(r), got == &head, len);
  r = syscall(SYS_get_robust_list, getpid(), &got, &len);
  printf("get_robust_list own tid: %s same %d\n", E(r), got == &head);
  printf("get_robust_list no such task: %s\n", E(syscall(SYS_get_robust_list, 999999, &got, &len)));
  printf("get_robust_list bad pointer: %s\n", E(syscall(SYS_get_robust_list, 0, (void *)8, &len)));
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  waits();
  wakes();
  requeues();
  wake_ops();
  shared_words();
  robust();
  return 0;
}
