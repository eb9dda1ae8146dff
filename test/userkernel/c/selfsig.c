// Signals a program sends itself: ignored, default-terminating, abort().
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "ign";
  setvbuf(stdout, NULL, _IONBF, 0);
  if (strcmp(mode, "ign") == 0) {
    signal(SIGUSR1, SIG_IGN);
    printf("raise ignored %d\n", raise(SIGUSR1));
    printf("kill ignored %d\n", kill(getpid(), SIGUSR1));
    printf("raise sigchld (default ignore) %d\n", raise(SIGCHLD));
    printf("survived\n");
    return 0;
  }
  if (strcmp(mode, "term") == 0) {
    printf("raising SIGTERM\n");
    raise(SIGTERM);
    printf("not reached\n");
    return 0;
  }
  printf("aborting\n");
  abort();
}
