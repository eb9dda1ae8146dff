// Faults become the program's signals with the siginfo Linux gives: SIGSEGV with si_addr the
// faulting address and si_code SEGV_MAPERR (nothing mapped) or SEGV_ACCERR (a PROT_NONE page,
// a write to a read-only one); SIGBUS for a mapping past the end of its file; SIGILL from ud2;
// SIGTRAP from int3. Each handler reads the fields and siglongjmps out, and the program goes
// on to the next.
#include "compat.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

static sigjmp_buf back;
static volatile int got_sig, got_code;
static void *volatile got_addr;

static void handler(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  got_sig = sig;
  got_code = si->si_code;
  got_addr = si->si_addr;
  siglongjmp(back, 1);
}

static const char *code(int sig, int c) {
  if (sig == SIGSEGV) return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
  if (sig == SIGBUS) return c == BUS_ADRERR ? "BUS_ADRERR" : "other";
  if (sig == SIGILL) return c == ILL_ILLOPN ? "ILL_ILLOPN" : "other";
  if (sig == SIGTRAP) return c == SI_KERNEL ? "SI_KERNEL" : c == TRAP_BRKPT ? "TRAP_BRKPT" : "other";
  return "other";
}

#define FAULT(what, addr, stmt)                                                                  \
  do {                                                                                           \
    got_sig = 0;                                                                                 \
    if (sigsetjmp(back, 1) == 0) {                                                               \
      stmt;                                                                                      \
      say("%s: no fault", what);                                                                 \
    } else                                                                                       \
      say("%s: signal %d, %s, si_addr %s", what, got_sig, code(got_sig, got_code),                \
          (addr) == 0 ? "(not checked)" : got_addr == (void *)(addr) ? "right" : "wrong");       \
  } while (0)

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO;
  int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP};
  for (int i = 0; i < 4; i++) check(sigaction(sigs[i], &sa, 0) == 0);

  long page = sysconf(_SC_PAGESIZE);
  char *none = mmap(0, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *ro = mmap(0, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *gone = mmap(0, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  check(none != MAP_FAILED && ro != MAP_FAILED && gone != MAP_FAILED);
  check(munmap(gone, page) == 0);

  FAULT("read of an unmapped page", gone + 8, (void)*(volatile char *)(gone + 8));
  FAULT("write to address 0x10", 0x10, *(volatile int *)0x10 = 1);
  FAULT("read of a PROT_NONE page", none + 100, (void)*(volatile char *)(none + 100));
  FAULT("write to a read-only page", ro + 5, *(volatile char *)(ro + 5) = 1);
  check(mprotect(ro, page, PROT_READ | PROT_WRITE) == 0);
  FAULT("write after mprotect(PROT_WRITE)", 0, *(volatile char *)(ro + 5) = 1);

  // A shared mapping of two pages of a one-page file: the second page is past EOF.
  char path[] = "/tmp/compat-segv-XXXXXX";
  int fd = mkstemp(path);
  check(fd >= 0);
  unlink(path);
  check(ftruncate(fd, page) == 0);
  char *m = mmap(0, 2 * page, PROT_READ, MAP_SHARED, fd, 0);
  check(m != MAP_FAILED);
  FAULT("read inside the file", 0, (void)*(volatile char *)(m + 1));
  FAULT("read past the end of the file", m + page + 3, (void)*(volatile char *)(m + page + 3));

  FAULT("ud2", 0, __asm__ volatile("ud2"));
  FAULT("int3", 0, __asm__ volatile("int3"));

  // The signals are unblocked again after each siglongjmp: a second fault is caught too.
  FAULT("read of address 0x20", 0x20, (void)*(volatile char *)0x20);
  return 0;
}
