// Handler flags and masks: without SA_NODEFER a signal raised inside its own handler waits
// until the handler returns; with SA_NODEFER it nests. sa_mask holds another signal off for
// the handler's run. SA_RESETHAND puts the default back at delivery. A blocked signal stays
// pending (sigpending) and is delivered at the unblock: a standard one once however often it
// was raised, a real-time one once per raise; several pending at the unblock each get a
// frame, stacked as Linux stacks them (the order the handlers run is printed).
#include "compat.h"
#include <signal.h>

static char trace[256];
static volatile int reraise_self, reraise_other, depth, maxdepth;

static void note(const char *fmt, int v) {
  size_t n = strlen(trace);
  snprintf(trace + n, sizeof trace - n, fmt, v);
}

static void nest(int sig) {
  note(" +%d", sig);
  if (++depth > maxdepth) maxdepth = depth;
  if (reraise_self) {
    reraise_self = 0;
    raise(sig);
  }
  if (sig == SIGUSR1 && reraise_other) {
    reraise_other = 0;
    raise(SIGUSR2);
  }
  note(" -%d", sig);
  depth--;
}

static void install(int sig, void (*h)(int), int flags, int masked) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (masked) sigaddset(&sa.sa_mask, masked);
  check(sigaction(sig, &sa, 0) == 0);
}

static void run(const char *what, int flags, int masked) {
  install(SIGUSR1, nest, flags, masked);
  install(SIGUSR2, nest, 0, 0);
  trace[0] = 0;
  maxdepth = 0;
  reraise_self = reraise_other = 1;
  raise(SIGUSR1);
  say("%s: max depth %d, handlers ran:%s", what, maxdepth, trace);
}

static void rt_handler(int sig) { note(" RTMIN+%d", sig - SIGRTMIN); }

int main(void) {
  run("no flags", 0, 0);
  run("SA_NODEFER", SA_NODEFER, 0);
  run("sa_mask holding SIGUSR2", 0, SIGUSR2);

  install(SIGUSR1, nest, SA_RESETHAND, 0);
  trace[0] = 0;
  raise(SIGUSR1);
  struct sigaction now;
  sigaction(SIGUSR1, 0, &now);
  say("SA_RESETHAND: handlers ran:%s, then the disposition is %s", trace,
      now.sa_handler == SIG_DFL ? "SIG_DFL" : "other");

  install(SIGUSR1, nest, 0, 0);
  install(SIGRTMIN, rt_handler, 0, 0);
  install(SIGRTMIN + 2, rt_handler, 0, 0);
  sigset_t set, pend;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGRTMIN);
  sigaddset(&set, SIGRTMIN + 2);
  sigprocmask(SIG_BLOCK, &set, 0);
  raise(SIGUSR1);
  raise(SIGUSR1);
  raise(SIGRTMIN + 2);
  raise(SIGRTMIN);
  raise(SIGRTMIN + 2);
  sigpending(&pend);
  say("pending: SIGUSR1 %d SIGRTMIN %d SIGRTMIN+2 %d SIGUSR2 %d", sigismember(&pend, SIGUSR1),
      sigismember(&pend, SIGRTMIN), sigismember(&pend, SIGRTMIN + 2), sigismember(&pend, SIGUSR2));
  trace[0] = 0;
  sigprocmask(SIG_UNBLOCK, &set, 0);
  say("at the unblock, handlers ran:%s", trace);
  sigpending(&pend);
  say("pending after: SIGUSR1 %d SIGRTMIN+2 %d", sigismember(&pend, SIGUSR1), sigismember(&pend, SIGRTMIN + 2));
  return 0;
}
