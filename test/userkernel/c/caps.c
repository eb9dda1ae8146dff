// capget and capset under the userkernel, whose one privilege is euid 0: root has every
// capability (CAP_LAST_CAP 40), another uid none; the version handshake as Linux's; a capset
// that keeps the sets succeeds, one that drops a capability is refused (EPERM), one that adds
// a capability the process lacks is EPERM as on Linux.
#include "compat.h"
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int err(long r) { return r < 0 ? errno : 0; }

static void show(const char *who) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  check(syscall(SYS_capget, &h, d) == 0);
  say("%s: eff %08x%08x prm %08x%08x inh %08x%08x", who, d[1].effective, d[0].effective, d[1].permitted,
      d[0].permitted, d[1].inheritable, d[0].inheritable);
}

int main(void) {
  struct __user_cap_header_struct h = {0x12345678, 0};
  int r = err(syscall(SYS_capget, &h, NULL));
  say("probe: %s, version now %x", ename(r), h.version);
  struct __user_cap_data_struct d[2];
  h.version = 0x12345678;
  r = err(syscall(SYS_capget, &h, d));
  say("bad version with data: %s, version now %x", ename(r), h.version);
  show("root");
  h.version = _LINUX_CAPABILITY_VERSION_1;
  check(syscall(SYS_capget, &h, d) == 0);
  say("v1: eff %08x", d[0].effective);
  h.version = _LINUX_CAPABILITY_VERSION_3;
  h.pid = 99999;
  say("capget of no process: %s", ename(err(syscall(SYS_capget, &h, d))));
  h.pid = 0;
  check(syscall(SYS_capget, &h, d) == 0);
  say("capset the same sets: %s", ename(err(syscall(SYS_capset, &h, d))));
  d[0].effective &= ~(1u << 21); /* CAP_SYS_ADMIN */
  say("capset dropping one: %s", ename(err(syscall(SYS_capset, &h, d))));
  say("capbset read 21: %d, 41: %s", (int)prctl(PR_CAPBSET_READ, 21), ename(err(prctl(PR_CAPBSET_READ, 41))));
  say("capbset drop: %s", ename(err(prctl(PR_CAPBSET_DROP, 21))));
  say("ambient is set: %d, raise: %s, clear: %d", (int)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 21, 0, 0),
      ename(err(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 21, 0, 0))),
      (int)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
  pid_t c = fork();
  if (c == 0) {
    check(setuid(1000) == 0);
    show("uid 1000");
    struct __user_cap_data_struct z[2] = {{0, 0, 0}, {0, 0, 0}};
    struct __user_cap_header_struct hh = {_LINUX_CAPABILITY_VERSION_3, 0};
    say("uid 1000 capset nothing: %s", ename(err(syscall(SYS_capset, &hh, z))));
    z[0].permitted = z[0].effective = 1;
    say("uid 1000 capset adding one: %s", ename(err(syscall(SYS_capset, &hh, z))));
    _exit(0);
  }
  int st;
  check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  c = fork();
  if (c == 0) {
    pause();
    _exit(0);
  }
  h.pid = c;
  check(syscall(SYS_capget, &h, d) == 0);
  say("a child's: eff %08x", d[0].effective);
  say("capset of another process: %s", ename(err(syscall(SYS_capset, &h, d))));
  kill(c, SIGKILL);
  waitpid(c, &st, 0);
  return 0;
}
