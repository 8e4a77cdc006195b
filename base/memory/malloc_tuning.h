// glibc malloc settings for processes that move large messages (gRPC payloads of tens of KiB):
// the bulwark server, the SDK's plugin processes and bulwark's benchmark hosts.
#ifndef BULWARK_BASE_MEMORY_MALLOC_TUNING_H_
#define BULWARK_BASE_MEMORY_MALLOC_TUNING_H_

#include <cstddef>

namespace bulwark {

// Up to this much free memory at the top of a malloc heap is kept for reuse rather than given
// back to the kernel, and allocations below it come from the heaps rather than from mmap.
inline constexpr size_t kMallocKeepBytes = 1 << 20;

// glibc's defaults give back the free top of a heap once it passes 128 KiB (a thread arena's
// with madvise(MADV_DONTNEED)), so a process that allocates and frees a 64 KiB message per call
// pays, per call, the page faults and zeroing of touching those pages again and the TLB
// shootdowns of the madvise: a 64 KiB echo spent most of its CPU there (docs/performance.md,
// "Malloc trimming"). This sets M_TRIM_THRESHOLD and M_MMAP_THRESHOLD to kMallocKeepBytes, so a
// process keeps at most 1 MiB of free memory per arena. Leaves glibc alone when the environment
// already sets malloc tunables (GLIBC_TUNABLES with glibc.malloc.*, MALLOC_TRIM_THRESHOLD_,
// MALLOC_MMAP_THRESHOLD_). Returns whether it set them. Call once, early in main.
bool TuneMallocForMessages();

}  // namespace bulwark

#endif  // BULWARK_BASE_MEMORY_MALLOC_TUNING_H_
