// A test program that runs into its cgroup's limits: `cgroup_hog memory` allocates and touches
// memory 1 MiB at a time until something stops it; `cgroup_hog fork N` tries to start N
// children (each sleeps until its parent ends), prints how many it started, and exits 0.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "memory") == 0) {
    printf("allocating\n");
    fflush(stdout);
    for (;;) {
      char* chunk = static_cast<char*>(malloc(1 << 20));
      if (chunk == nullptr) return 3;
      memset(chunk, 1, 1 << 20);
    }
  }
  if (argc >= 3 && strcmp(argv[1], "fork") == 0) {
    const int wanted = atoi(argv[2]);
    int started = 0;
    for (int i = 0; i < wanted; ++i) {
      const pid_t pid = fork();
      if (pid < 0) break;
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pause();
        _exit(0);
      }
      ++started;
    }
    printf("started %d\n", started);
    return 0;
  }
  fprintf(stderr, "usage: cgroup_hog memory | cgroup_hog fork N\n");
  return 2;
}
