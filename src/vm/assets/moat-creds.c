/*
 * moat-creds: the last step before a container's process runs in the guest. The agent
 * starts it inside the container's namespaces (after unshare, or nsenter for an exec);
 * it confines itself to the container's rootfs and takes on the process's identity and
 * limits from the OCI config, in the order runc uses, then execs the program:
 *
 *   chroot, chdir -> rlimits -> umask -> groups, gid -> bounding set -> uid (caps kept)
 *   -> effective/permitted/inheritable -> ambient -> no_new_privs -> seccomp -> exec
 *
 * Without no_new_privs the kernel takes a seccomp filter only from a process with
 * CAP_SYS_ADMIN, so the filter then goes on before the uid and capability changes (the
 * profile must allow those calls, as runc requires too).
 *
 * usage: moat-creds --root DIR --cwd DIR --uid N --gid N [--groups G,G...] [--umask OCTAL]
 *          [--rlimit RESOURCE=SOFT:HARD]... [--caps BOUNDING:EFFECTIVE:PERMITTED:INHERITABLE:AMBIENT]
 *          [--no-new-privs] [--seccomp FILE] [--init] -- PROGRAM ARGS...
 * Capability sets are 64-bit masks in hex. FILE holds a classic BPF program (struct
 * sock_filter[]), read before the chroot. Without --caps the process keeps every
 * capability, as runc does for a config without a capabilities object.
 *
 * With --init (docker's --init) it stays behind as the container's PID 1 once all of the
 * above is in place, as tini does under the same identity and filter: it forks the program
 * into a process group of its own (given the terminal, if any), forwards every signal it
 * receives to it, reaps every orphan the namespace hands it, and exits as the program did
 * (128+n after a death by signal n).
 *
 * Exit status when the program never runs: 126 (cannot set up or not executable),
 * 127 (not found), as shells report them. Built static at guest-image build time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#define MAX_GROUPS 256
#define MAX_RLIMITS 32

static void die(const char *what, const char *arg) {
  int e = errno;
  fprintf(stderr, "moat-creds: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(e));
  exit(126);
}

static void usage(const char *why) {
  fprintf(stderr, "moat-creds: %s\n", why);
  exit(126);
}

static unsigned long number(const char *s, int base, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, base);
  if (errno || end == s || *end) usage(what);
  return v;
}

static const struct {
  const char *name;
  int resource;
} RLIMITS[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

static void set_rlimit(const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *colon = eq ? strchr(eq, ':') : NULL;
  if (!eq || !colon) usage("--rlimit wants RESOURCE=SOFT:HARD");
  for (size_t i = 0; i < sizeof RLIMITS / sizeof RLIMITS[0]; i++) {
    if (strlen(RLIMITS[i].name) != (size_t)(eq - spec) || strncmp(RLIMITS[i].name, spec, eq - spec) != 0) continue;
    char soft[32], hard[32];
    snprintf(soft, sizeof soft, "%.*s", (int)(colon - eq - 1), eq + 1);
    snprintf(hard, sizeof hard, "%s", colon + 1);
    struct rlimit r = {number(soft, 10, "bad rlimit soft value"), number(hard, 10, "bad rlimit hard value")};
    if (setrlimit(RLIMITS[i].resource, &r) != 0) die("setrlimit", spec);
    return;
  }
  usage("unknown rlimit resource");
}

static struct sock_filter filter[4096];
static struct sock_fprog seccomp_prog = {0, filter};

static void read_seccomp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die("open", path);
  size_t n = fread(filter, sizeof filter[0], sizeof filter / sizeof filter[0], f);
  int bad = ferror(f) || !feof(f) || n == 0;
  fclose(f);
  if (bad) usage("the seccomp program is empty, unreadable or over 4096 instructions");
  seccomp_prog.len = (unsigned short)n;
}

static void load_seccomp(void) {
  if (seccomp_prog.len && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &seccomp_prog, 0, 0) != 0)
    die("loading the seccomp filter", NULL);
}

static int last_cap(void) {
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
  int n = 40;
  if (f) {
    if (fscanf(f, "%d", &n) != 1) n = 40;
    fclose(f);
  }
  return n;
}

/*
 * The init of --init: every signal stays blocked here and is taken with sigwaitinfo, so a
 * PID 1 (which the kernel spares signals it has no handler for) still receives them.
 */
static int run_init(char **argv) {
  sigset_t all, old;
  sigfillset(&all);
  if (sigprocmask(SIG_SETMASK, &all, &old) != 0) die("sigprocmask", NULL);
  prctl(PR_SET_NAME, "moat-init", 0, 0, 0);
  pid_t child = fork();
  if (child < 0) die("fork", NULL);
  if (child == 0) {
    /* Its own group, and the terminal's foreground (so ^C reaches it, not the init);
     * SIGTTOU is still blocked here, so tcsetpgrp cannot stop us. */
    setpgid(0, 0);
    tcsetpgrp(STDIN_FILENO, getpgrp());
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(argv[0], argv);
    int e = errno;
    fprintf(stderr, "moat-creds: exec %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      /* SIGSTOP/SIGKILL never get here; a stop signal of the terminal is passed on too. */
      kill(child, sig);
      continue;
    }
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
      if (p != child) continue;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    }
  }
}

int main(int argc, char **argv) {
  const char *root = NULL, *cwd = "/", *groups = NULL, *caps = NULL;
  const char *rlimits[MAX_RLIMITS];
  int nrlimits = 0, no_new_privs = 0, have_umask = 0, init = 0;
  unsigned long uid = 0, gid = 0, mask = 022;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--no-new-privs") == 0) {
      no_new_privs = 1;
      continue;
    }
    if (strcmp(a, "--init") == 0) {
      init = 1;
      continue;
    }
    if (i + 1 >= argc) usage("an option lacks its value");
    const char *v = argv[++i];
    if (strcmp(a, "--root") == 0) root = v;
    else if (strcmp(a, "--cwd") == 0) cwd = v;
    else if (strcmp(a, "--uid") == 0) uid = number(v, 10, "bad --uid");
    else if (strcmp(a, "--gid") == 0) gid = number(v, 10, "bad --gid");
    else if (strcmp(a, "--groups") == 0) groups = v;
    else if (strcmp(a, "--umask") == 0) mask = number(v, 8, "bad --umask"), have_umask = 1;
    else if (strcmp(a, "--caps") == 0) caps = v;
    else if (strcmp(a, "--seccomp") == 0) read_seccomp(v);
    else if (strcmp(a, "--rlimit") == 0) {
      if (nrlimits == MAX_RLIMITS) usage("too many --rlimit");
      rlimits[nrlimits++] = v;
    } else usage("unknown option");
  }
  if (!root || i >= argc) usage("--root and a program are required");

  if (chroot(root) != 0) die("chroot", root);
  if (chdir(cwd) != 0) die("chdir", cwd);

  for (int r = 0; r < nrlimits; r++) set_rlimit(rlimits[r]);
  if (have_umask) umask((mode_t)mask);

  gid_t list[MAX_GROUPS];
  size_t n = 0;
  if (groups && *groups) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", groups);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
      if (n == MAX_GROUPS) usage("too many --groups");
      list[n++] = (gid_t)number(tok, 10, "bad --groups");
    }
  }
  if (setgroups(n, list) != 0) die("setgroups", NULL);
  if (setresgid(gid, gid, gid) != 0) die("setresgid", NULL);

  uint64_t set[5] = {0, 0, 0, 0, 0};
  if (caps) {
    const char *p = caps;
    for (int s = 0; s < 5; s++) {
      char *end;
      errno = 0;
      set[s] = strtoull(p, &end, 16);
      if (errno || end == p || (s < 4 && *end != ':') || (s == 4 && *end)) usage("--caps wants five hex masks");
      p = end + 1;
    }
    /* The bounding set first: dropping needs CAP_SETPCAP, which the uid change may take. */
    int last = last_cap();
    for (int c = 0; c <= last; c++) {
      if (!(set[0] >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) die("dropping a bounding capability", NULL);
    }
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) die("PR_SET_KEEPCAPS", NULL);
  }
  if (!no_new_privs) load_seccomp();
  if (setresuid(uid, uid, uid) != 0) die("setresuid", NULL);
  if (caps) {
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) die("PR_SET_KEEPCAPS", NULL);
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    for (int w = 0; w < 2; w++) {
      data[w].effective = (uint32_t)(set[1] >> (32 * w));
      data[w].permitted = (uint32_t)(set[2] >> (32 * w));
      data[w].inheritable = (uint32_t)(set[3] >> (32 * w));
    }
    if (syscall(SYS_capset, &hdr, data) != 0) die("capset", NULL);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) die("clearing ambient capabilities", NULL);
    /* The kernel raises an ambient capability only if it is permitted and inheritable too;
     * as runc does, one that is not is skipped rather than failing the container. */
    for (int c = 0; c < 64; c++) {
      if (set[4] >> c & 1) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
    }
  }
  if (no_new_privs) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("PR_SET_NO_NEW_PRIVS", NULL);
    load_seccomp();
  }

  if (init) return run_init(argv + i);
  execvp(argv[i], argv + i);
  int e = errno;
  fprintf(stderr, "moat-creds: exec %s: %s\n", argv[i], strerror(e));
  return e == ENOENT ? 127 : 126;
}
