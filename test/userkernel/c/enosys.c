// Calls a system call the userkernel does not implement and reports what came back.
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
  long r = syscall(SYS_fanotify_init, 0, 0);
  printf("fanotify_init %ld errno %d\n", r, r == -1 ? errno : 0);
  r = syscall(100000);
  printf("out of range %ld errno %d\n", r, r == -1 ? errno : 0);
  return 0;
}
