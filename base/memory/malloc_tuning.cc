#include "base/memory/malloc_tuning.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace bulwark {

bool TuneMallocForMessages() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if ((tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
      std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
      std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) {
    return false;
  }
#ifdef __GLIBC__
  return mallopt(M_TRIM_THRESHOLD, static_cast<int>(kMallocKeepBytes)) == 1 &&
         mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMallocKeepBytes)) == 1;
#else
  return false;
#endif
}

}  // namespace bulwark
