// POSIX shared memory and semaphores in one process: shm_open over /dev/shm, two MAP_SHARED
// mappings of one file see each other's writes (and a later mapping, a private one, read and
// write see them too), named and unnamed semaphores (futex words in shared memory), a process-shared
// mutex and a timed condition wait. Prints results and errno names.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const char *E(long r) {
  if (r == 0) return "0";
  if (r > 0) return "positive";
  return strerrorname_np(errno);
}

static struct timespec in_ms(long ms) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_nsec += ms * 1000000;
  t.tv_sec += t.tv_nsec / 1000000000;
  t.tv_nsec %= 1000000000;
  return t;
}

static void shm(void) {
  shm_unlink("/moat-shm-test");
  int fd = shm_open("/moat-shm-test", O_CREAT | O_EXCL | O_RDWR, 0600);
  printf("shm_open create: %s\n", fd >= 0 ? "ok" : strerrorname_np(errno));
  printf("ftruncate: %s\n", E(ftruncate(fd, 8192)));
  char *a = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  char *b = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  printf("two mappings: %d\n", a != MAP_FAILED && b != MAP_FAILED && a != b);
  strcpy(a, "written through a");
  strcpy(b + 4096, "written through b");
  printf("b sees a: %s\n", b);
  printf("a sees b: %s\n", a + 4096);
  char *second = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
  printf("offset mapping sees b: %s\n", second);
  munmap(a, 8192);
  char *c = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  printf("a new mapping sees it: %s\n", c);
  char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  printf("a private mapping starts from it: %s\n", p);
  strcpy(p, "private");
  printf("private writes stay private: %s\n", c);
  close(fd);
  int again = shm_open("/moat-shm-test", O_RDWR, 0);
  char *d = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, again, 0);
  printf("reopened sees it: %s\n", d);
  strcpy(d, "through d");
  printf("c sees d: %s\n", c);
  char buf[32] = {0};
  pread(again, buf, 9, 0);
  printf("read sees the mapping's write: %s\n", buf);
  pwrite(again, "WRITE", 5, 4096);
  printf("the mapping sees write: %.17s\n", c + 4096);
  ftruncate(again, 4096);
  ftruncate(again, 8192);
  memset(buf, 'x', sizeof buf);
  pread(again, buf, 4, 4096);
  printf("truncated away reads as zeros: %d %d %d %d\n", buf[0], buf[1], buf[2], buf[3]);
  close(again);
  printf("shm_unlink: %s\n", E(shm_unlink("/moat-shm-test")));
  printf("shm_open gone: %s\n", shm_open("/moat-shm-test", O_RDWR, 0) >= 0 ? "ok" : strerrorname_np(errno));
  printf("mapping outlives the name: %s\n", c);
}

static void named_semaphore(void) {
  sem_unlink("/moat-sem-test");
  sem_t *s = sem_open("/moat-sem-test", O_CREAT | O_EXCL, 0600, 1);
  printf("sem_open: %s\n", s != SEM_FAILED ? "ok" : strerrorname_np(errno));
  sem_t *s2 = sem_open("/moat-sem-test", 0);
  printf("sem_open again: %s same %d\n", s2 != SEM_FAILED ? "ok" : strerrorname_np(errno), s2 == s);
  int v = -1;
  printf("sem_wait: %s\n", E(sem_wait(s)));
  printf("sem_trywait at 0: %s\n", E(sem_trywait(s)));
  struct timespec t = in_ms(30);
  printf("sem_timedwait at 0: %s\n", E(sem_timedwait(s, &t)));
  printf("sem_post: %s\n", E(sem_post(s)));
  sem_getvalue(s2, &v);
  printf("value through the other handle: %d\n", v);
  sem_close(s2);
  sem_close(s);
  printf("sem_unlink: %s\n", E(sem_unlink("/moat-sem-test")));
}

static void shared_sync(void) {
  struct shared {
    sem_t sem;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
  } *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  printf("sem_init pshared: %s\n", E(sem_init(&sh->sem, 1, 0)));
  sem_post(&sh->sem);
  sem_post(&sh->sem);
  printf("sem_wait twice: %s %s\n", E(sem_wait(&sh->sem)), E(sem_wait(&sh->sem)));
  printf("sem_trywait empty: %s\n", E(sem_trywait(&sh->sem)));
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&sh->mutex, &ma);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_init(&sh->cond, &ca);
  printf("mutex lock: %d\n", pthread_mutex_lock(&sh->mutex));
  printf("mutex trylock held: %s\n", strerrorname_np(pthread_mutex_trylock(&sh->mutex)));
  struct timespec t = in_ms(30);
  printf("cond timedwait: %s\n", strerrorname_np(pthread_cond_timedwait(&sh->cond, &sh->mutex, &t)));
  printf("cond signal nobody: %d\n", pthread_cond_signal(&sh->cond));
  printf("mutex unlock: %d\n", pthread_mutex_unlock(&sh->mutex));
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  shm();
  named_semaphore();
  shared_sync();
  return 0;
}
