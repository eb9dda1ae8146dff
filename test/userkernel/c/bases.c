// What the kernel tells ld.so at exec (the auxiliary vector) checked against what ld.so made
// of it: AT_BASE is where ld.so itself was loaded, AT_PHDR the program's own headers, AT_ENTRY
// the program's entry point, the program break above the program. Built without -static.
// stdout is the same natively and under the userkernel; stderr gets the addresses, which
// differ from run to run when they are randomised.
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char _start[];
extern char end[];

static unsigned long ldso;
static const ElfW(Phdr) *mainPhdr;
static unsigned long mainBase;
static int objects;

static int each(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  // The vDSO is an object too where there is one (natively); the userkernel has none.
  if (strcmp(info->dlpi_name, "linux-vdso.so.1") == 0) return 0;
  if (objects++ == 0) {
    mainPhdr = info->dlpi_phdr;
    mainBase = info->dlpi_addr;
  }
  if (strstr(info->dlpi_name, "ld-linux-x86-64")) ldso = info->dlpi_addr;
  return 0;
}

int main(void) {
  dl_iterate_phdr(each, NULL);
  unsigned long base = getauxval(AT_BASE);
  printf("objects %d\n", objects);
  printf("at_base is ld.so %d\n", base != 0 && base == ldso);
  printf("at_phdr is the program's %d\n", getauxval(AT_PHDR) == (unsigned long)mainPhdr);
  printf("at_entry is _start %d\n", getauxval(AT_ENTRY) == (unsigned long)_start);
  printf("at_phent %lu\n", getauxval(AT_PHENT));
  printf("at_pagesz %lu at_clktck %lu at_secure %lu\n", getauxval(AT_PAGESZ), getauxval(AT_CLKTCK),
         getauxval(AT_SECURE));
  printf("at_platform %s\n", (const char *)getauxval(AT_PLATFORM));
  printf("at_hwcap %lx at_hwcap2 %lx\n", getauxval(AT_HWCAP), getauxval(AT_HWCAP2));
  printf("at_random set %d\n", getauxval(AT_RANDOM) != 0);
  const char *execfn = (const char *)getauxval(AT_EXECFN);
  printf("at_execfn ends in bases %d\n", execfn && strstr(execfn, "bases") != NULL);
  printf("at_minsigstksz set %d\n", getauxval(AT_MINSIGSTKSZ) != 0);
  char *brk = sbrk(0);
  printf("brk above the program %d\n", brk >= end && brk - end <= (1L << 30));
  printf("ld.so above the program %d\n", ldso > (unsigned long)end);
  fprintf(stderr, "addresses program=%lx ld.so=%lx brk=%lx stack=%lx\n", mainBase, ldso,
          (unsigned long)brk, (unsigned long)&base);
  return 0;
}
