// The small process and scheduling calls busybox and python touch on the way: prctl, the
// affinity and scheduling parameters, nice values, getcpu, rseq, membarrier, ioprio. Prints
// results (or errno names) that do not depend on the host: the same natively and under the
// userkernel.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct attr {
  unsigned size, policy;
  unsigned long long flags;
  int nice;
  unsigned priority;
  unsigned long long runtime, deadline, period;
  unsigned util_min, util_max;
};

static void report(const char *what, long r) {
  if (r < 0) printf("%s: %s\n", what, strerrorname_np(errno));
  else printf("%s: %ld\n", what, r);
}

int main(void) {
  char name[32] = {0};
  int v = -1;

  // prctl
  report("set name", prctl(PR_SET_NAME, "a-very-long-thread-name"));
  report("get name", prctl(PR_GET_NAME, name));
  printf("name: %s\n", name);
  report("set pdeathsig", prctl(PR_SET_PDEATHSIG, 15));
  report("get pdeathsig", prctl(PR_GET_PDEATHSIG, &v));
  printf("pdeathsig: %d\n", v);
  report("set pdeathsig 99", prctl(PR_SET_PDEATHSIG, 99));
  report("get dumpable", prctl(PR_GET_DUMPABLE));
  report("set dumpable 0", prctl(PR_SET_DUMPABLE, 0));
  report("get dumpable", prctl(PR_GET_DUMPABLE));
  report("set dumpable 2", prctl(PR_SET_DUMPABLE, 2));
  prctl(PR_SET_DUMPABLE, 1);
  v = -1;
  report("get subreaper", prctl(PR_GET_CHILD_SUBREAPER, &v));
  printf("subreaper: %d\n", v);
  report("set subreaper", prctl(PR_SET_CHILD_SUBREAPER, 1));
  report("get subreaper", prctl(PR_GET_CHILD_SUBREAPER, &v));
  printf("subreaper: %d\n", v);
  report("get no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  report("set no_new_privs bad", prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0));
  report("set no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  report("get no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  report("get timerslack", prctl(PR_GET_TIMERSLACK));
  report("set timerslack", prctl(PR_SET_TIMERSLACK, 1000));
  report("get timerslack", prctl(PR_GET_TIMERSLACK));
  report("reset timerslack", prctl(PR_SET_TIMERSLACK, 0));
  report("get timerslack", prctl(PR_GET_TIMERSLACK));
  report("get seccomp", prctl(PR_GET_SECCOMP));
  report("get keepcaps", prctl(PR_GET_KEEPCAPS));
  report("bad option", prctl(12345));

  // affinity: a mask with at least one CPU, the same one given back.
  cpu_set_t set;
  CPU_ZERO(&set);
  long n = syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
  printf("getaffinity size: %s, cpus: %s\n", n > 0 && n % 8 == 0 ? "longs" : "bad", CPU_COUNT(&set) > 0 ? "some" : "none");
  printf("affinity count is nproc: %s\n", CPU_COUNT(&set) == sysconf(_SC_NPROCESSORS_ONLN) ? "yes" : "no");
  report("getaffinity len 4", syscall(SYS_sched_getaffinity, 0, 4, &set));
  report("getaffinity len 12", syscall(SYS_sched_getaffinity, 0, 12, &set));
  report("getaffinity other pid", syscall(SYS_sched_getaffinity, 999999, sizeof set, &set));
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &set)) {
      first = c;
      break;
    }
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  report("setaffinity one", sched_setaffinity(0, sizeof one, &one));
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  printf("after set: %d cpu(s), the one set: %s\n", CPU_COUNT(&set), CPU_ISSET(first, &set) ? "yes" : "no");
  unsigned cpu = 12345, node = 12345;
  report("getcpu", syscall(SYS_getcpu, &cpu, &node, NULL));
  printf("getcpu on the set cpu: %s, node %u\n", cpu == (unsigned)first ? "yes" : "no", node);
  CPU_ZERO(&one);
  report("setaffinity empty", sched_setaffinity(0, sizeof one, &one));
  report("setaffinity other pid", sched_setaffinity(999999, sizeof set, &set));

  // scheduling policy and parameters
  struct sched_param sp = {.sched_priority = 7};
  report("getscheduler", sched_getscheduler(0));
  report("getparam", sched_getparam(0, &sp));
  printf("priority: %d\n", sp.sched_priority);
  report("getparam other pid", sched_getparam(999999, &sp));
  report("getparam null", syscall(SYS_sched_getparam, 0, NULL));
  report("max fifo", sched_get_priority_max(SCHED_FIFO));
  report("min fifo", sched_get_priority_min(SCHED_FIFO));
  report("max rr", sched_get_priority_max(SCHED_RR));
  report("max other", sched_get_priority_max(SCHED_OTHER));
  report("min batch", sched_get_priority_min(SCHED_BATCH));
  report("max idle", sched_get_priority_max(SCHED_IDLE));
  report("max bad", sched_get_priority_max(42));
  sp.sched_priority = 0;
  report("setscheduler batch", sched_setscheduler(0, SCHED_BATCH, &sp));
  report("getscheduler", sched_getscheduler(0));
  sp.sched_priority = 3;
  report("setscheduler batch prio 3", sched_setscheduler(0, SCHED_BATCH, &sp));
  report("setparam prio 3", sched_setparam(0, &sp));
  sp.sched_priority = 0;
  report("setscheduler other", sched_setscheduler(0, SCHED_OTHER, &sp));
  report("getscheduler", sched_getscheduler(0));

  // sched_setattr/getattr: sizes, flags, policy and nice together.
  struct attr at;
  memset(&at, 0, sizeof at);
  report("getattr", syscall(SYS_sched_getattr, 0, &at, sizeof at, 0));
  printf("attr: size %u policy %u nice %d\n", at.size, at.policy, at.nice);
  report("getattr small", syscall(SYS_sched_getattr, 0, &at, 20, 0));
  report("getattr flags", syscall(SYS_sched_getattr, 0, &at, sizeof at, 1));
  memset(&at, 0, sizeof at);
  at.size = sizeof at;
  at.policy = SCHED_BATCH;
  at.nice = 4;
  report("setattr batch nice 4", syscall(SYS_sched_setattr, 0, &at, 0));
  memset(&at, 0, sizeof at);
  syscall(SYS_sched_getattr, 0, &at, sizeof at, 0);
  printf("attr: policy %u nice %d\n", at.policy, at.nice);
  report("getpriority after setattr", getpriority(PRIO_PROCESS, 0));
  at.size = 12;
  report("setattr size 12", syscall(SYS_sched_setattr, 0, &at, 0));
  printf("size told: %u\n", at.size);
  at.size = sizeof at;
  report("setattr bad flags arg", syscall(SYS_sched_setattr, 0, &at, 2));
  at.flags = 1ULL << 40;
  report("setattr unknown sched flag", syscall(SYS_sched_setattr, 0, &at, 0));
  at.flags = 0;
  at.policy = 6; /* SCHED_DEADLINE with no runtime */
  report("setattr deadline", syscall(SYS_sched_setattr, 0, &at, 0));
  report("setattr null", syscall(SYS_sched_setattr, 0, NULL, 0));
  report("setattr pid -1", syscall(SYS_sched_setattr, -1, &at, 0));
  report("setattr other pid", syscall(SYS_sched_setattr, 999999, &at, 0));
  char big[sizeof at + 8];
  memset(big, 0, sizeof big);
  memcpy(big, &at, sizeof at);
  ((struct attr *)big)->size = sizeof big;
  ((struct attr *)big)->policy = SCHED_OTHER;
  ((struct attr *)big)->nice = 0;
  report("setattr newer struct, zero tail", syscall(SYS_sched_setattr, 0, big, 0));
  big[sizeof at + 3] = 1;
  report("setattr newer struct, set tail", syscall(SYS_sched_setattr, 0, big, 0));
  report("getscheduler", sched_getscheduler(0));

  // nice values: the raw syscall gives 20 - nice.
  report("getpriority raw", syscall(SYS_getpriority, PRIO_PROCESS, 0));
  report("setpriority 5", setpriority(PRIO_PROCESS, 0, 5));
  errno = 0;
  report("getpriority", getpriority(PRIO_PROCESS, 0));
  report("setpriority 40 (clamped)", setpriority(PRIO_PROCESS, 0, 40));
  report("getpriority", getpriority(PRIO_PROCESS, 0));
  report("getpriority bad which", getpriority(7, 0));
  report("getpriority other pid", getpriority(PRIO_PROCESS, 999999));
  report("setpriority 0", setpriority(PRIO_PROCESS, 0, 0));
  report("getpriority", getpriority(PRIO_PROCESS, 0));
  // (PRIO_PGRP and PRIO_USER take the best of other processes natively: not comparable.)

  // rseq: glibc registered it already natively (EBUSY on a second registration) or not
  // (ENOSYS under the userkernel); either way a bad length is refused.
  long r = syscall(SYS_rseq, NULL, 0, 0, 0);
  printf("rseq bad: %s\n", r < 0 && (errno == EINVAL || errno == ENOSYS) ? "refused" : "accepted");

  // membarrier
  long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  printf("query: private expedited %s, register %s, global %s\n",
         q >= 0 && q & MEMBARRIER_CMD_PRIVATE_EXPEDITED ? "yes" : "no",
         q >= 0 && q & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED ? "yes" : "no",
         q >= 0 && q & MEMBARRIER_CMD_GLOBAL ? "yes" : "no");
  report("private expedited unregistered", syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
  report("register private expedited", syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0));
  report("private expedited", syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0));
  report("global", syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0));
  report("bad flags", syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 1, 0));
  report("bad cmd", syscall(SYS_membarrier, 1 << 20, 0, 0));

  // ioprio: who 0 is the caller; the default, a best-effort value, a bad class.
  long io = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0);
  printf("ioprio default: class %ld\n", io < 0 ? -1 : io >> 13);
  report("ioprio set be 3", syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 3));
  report("ioprio get", syscall(SYS_ioprio_get, 1, 0));
  report("ioprio set bad class", syscall(SYS_ioprio_set, 1, 0, (5 << 13) | 3));
  report("ioprio get bad which", syscall(SYS_ioprio_get, 9, 0));
  return 0;
}
