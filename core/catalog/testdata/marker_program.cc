// A tiny plugin stand-in for the immutable-launch test: prints a marker string that the test
// overwrites in place in the artifact file, and what the program sees as its own executable.
#include <unistd.h>

#include <cstdio>

// Volatile so the compiler keeps the bytes in the file exactly once, where the test finds them.
static volatile const char kMarker[] = "BULWARK-MARKER:original";

int main() {
  char exe[512];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = '\0';
  char marker[sizeof(kMarker)];
  for (size_t i = 0; i < sizeof(kMarker); ++i) marker[i] = kMarker[i];
  std::printf("%s\n%s\n", marker, exe);
  return 0;
}
