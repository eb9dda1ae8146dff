/*
 * moat-pty: runs a command on a new pseudo-terminal inside the guest. The guest agent is
 * Node, which can neither make a pty the controlling terminal of a child (setsid and
 * TIOCSCTTY between fork and exec) nor issue TIOCSWINSZ, so this helper does both.
 *
 * usage: moat-pty ROWS COLS -- ARGV...
 *   fd 0: copied to the terminal (EOF here leaves the terminal open)
 *   fd 1: receives everything the terminal outputs
 *   fd 3: control lines "ROWS COLS\n" resize the terminal
 * It exits as the command did (re-raising a fatal signal).
 * It is built into the guest image: a change here needs an ASSETS_VERSION bump.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int write_all(int fd, const char *p, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, (size_t)n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= w;
  }
  return 0;
}

static void set_size(int master, const char *line) {
  unsigned rows, cols;
  if (sscanf(line, "%u %u", &rows, &cols) != 2 || rows > 65535 || cols > 65535) return;
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  ioctl(master, TIOCSWINSZ, &ws);
}

int main(int argc, char **argv) {
  if (argc < 5 || strcmp(argv[3], "--") != 0) {
    fprintf(stderr, "usage: moat-pty ROWS COLS -- ARGV...\n");
    return 125;
  }
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
    perror("moat-pty: cannot allocate a pseudo-terminal");
    return 125;
  }
  char line[64];
  snprintf(line, sizeof line, "%s %s", argv[1], argv[2]);
  set_size(master, line);
  const char *slave_name = ptsname(master);
  pid_t child = fork();
  if (child < 0) {
    perror("moat-pty: fork");
    return 125;
  }
  if (child == 0) {
    int slave;
    if (setsid() < 0 || (slave = open(slave_name, O_RDWR)) < 0 || ioctl(slave, TIOCSCTTY, 0) < 0) {
      perror("moat-pty: cannot attach the terminal");
      _exit(125);
    }
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    if (slave > 2) close(slave);
    close(3);
    execvp(argv[4], argv + 4);
    perror("moat-pty: exec");
    _exit(127);
  }
  struct pollfd fds[3] = {{.fd = master, .events = POLLIN}, {.fd = 0, .events = POLLIN}, {.fd = 3, .events = POLLIN}};
  char buf[16384], ctl[64];
  size_t ctl_len = 0;
  for (;;) {
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      /* EIO: every holder of the terminal's other end has gone. */
      if (n <= 0 || write_all(1, buf, n) < 0) break;
    }
    if (fds[1].revents) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) fds[1].fd = -1;
      else write_all(master, buf, n);
    }
    if (fds[2].revents) {
      ssize_t n = read(3, ctl + ctl_len, sizeof ctl - 1 - ctl_len);
      if (n <= 0) {
        fds[2].fd = -1;
        continue;
      }
      ctl_len += (size_t)n;
      ctl[ctl_len] = 0;
      char *nl;
      while ((nl = strchr(ctl, '\n')) != NULL) {
        *nl = 0;
        set_size(master, ctl);
        ctl_len -= (size_t)(nl + 1 - ctl);
        memmove(ctl, nl + 1, ctl_len + 1);
      }
      if (ctl_len == sizeof ctl - 1) ctl_len = 0; /* a line too long to be a size */
    }
  }
  int status;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return 125;
  }
  if (WIFSIGNALED(status)) {
    signal(WTERMSIG(status), SIG_DFL);
    kill(getpid(), WTERMSIG(status));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
