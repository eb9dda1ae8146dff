// dlopen at run time: libm (not linked in: built without -lm) and libgcc_s, which glibc
// itself dlopens for pthread_cancel and backtraces. ld.so maps them from files with mmap.
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
  void *m = dlopen("libm.so.6", RTLD_NOW);
  if (!m) {
    printf("dlopen libm: %s\n", dlerror());
    return 1;
  }
  double (*cosine)(double) = (double (*)(double))dlsym(m, "cos");
  double (*root)(double) = (double (*)(double))dlsym(m, "sqrt");
  printf("cos(0.5) = %.6f, sqrt(2) = %.6f\n", cosine(0.5), root(2.0));
  void *g = dlopen("libgcc_s.so.1", RTLD_NOW);
  if (!g) {
    printf("dlopen libgcc_s: %s\n", dlerror());
    return 1;
  }
  printf("libgcc_s _Unwind_Backtrace found %d\n", dlsym(g, "_Unwind_Backtrace") != NULL);
  printf("dlclose %d %d\n", dlclose(g), dlclose(m));
  return 0;
}
