// Arguments and environment strings are bytes, not text: execve passes bytes that are not
// UTF-8 (0xff, a lone continuation byte) to the new program unchanged, and /proc/self/cmdline
// shows them as they are.
#include "compat.h"
#include <fcntl.h>
#include <sys/wait.h>

static void hex(const char *label, const char *s) {
  char out[128];
  int n = 0;
  for (; *s && n < 120; s++) n += snprintf(out + n, sizeof out - n, "%02x", (unsigned char)*s);
  out[n] = 0;
  say("%s %s", label, out);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    hex("argv[1]", argv[1]);
    const char *k = getenv("K");
    hex("K", k ? k : "");
    char buf[256];
    int fd = open("/proc/self/cmdline", O_RDONLY);
    check(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    check(n > 0);
    buf[n] = 0;
    // The second argument starts after the first NUL.
    hex("cmdline[1]", buf + strlen(buf) + 1);
    return 0;
  }
  char arg[] = "\xfe\x80x\xc3\xa9";
  char env[] = "K=abc\xff";
  char *args[] = {argv[0], arg, NULL};
  char *envp[] = {env, NULL};
  pid_t c = fork();
  if (c == 0) {
    execve("/proc/self/exe", args, envp);
    say("execve: %s", ename(errno));
    _exit(1);
  }
  int status;
  check(waitpid(c, &status, 0) == c);
  if (WIFSIGNALED(status)) say("child killed by signal %d", WTERMSIG(status));
  else say("child exit %d", WEXITSTATUS(status));
  return 0;
}
