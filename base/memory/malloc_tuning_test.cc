// TuneMallocForMessages, observed through mallinfo2: after it, a 600 KiB block comes from the
// heap (not mmap) and freeing it keeps the memory for the next allocation; an environment
// that sets malloc tunables itself is left alone.
#include "base/memory/malloc_tuning.h"

#include <malloc.h>
#include <stdlib.h>

#include <cstring>

#include "gtest/gtest.h"

namespace bulwark {
namespace {

constexpr size_t kBlock = 600 * 1024;  // Above glibc's default thresholds, below kMallocKeepBytes.
void* volatile g_sink = nullptr;

TEST(MallocTuningTest, AnEnvironmentWithItsOwnTunablesIsLeftAlone) {
  ASSERT_EQ(::setenv("MALLOC_TRIM_THRESHOLD_", "131072", 1), 0);
  EXPECT_FALSE(TuneMallocForMessages());
  ::unsetenv("MALLOC_TRIM_THRESHOLD_");
}

TEST(MallocTuningTest, LargeBlocksComeFromTheHeapAndStayForReuse) {
  ASSERT_TRUE(TuneMallocForMessages());
  const struct mallinfo2 before = mallinfo2();
  void* block = malloc(kBlock);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, kBlock);
  g_sink = block;  // So that an optimising build keeps the allocation.
  const struct mallinfo2 held = mallinfo2();
  // Not an mmap of its own (glibc's default for a block this size)...
  EXPECT_EQ(held.hblkhd, before.hblkhd);
  free(block);
  const struct mallinfo2 after = mallinfo2();
  // ...and not given back on free (the default trims a free top over 128 KiB).
  EXPECT_EQ(after.arena, held.arena);
  EXPECT_GE(after.fordblks, kBlock);
}

}  // namespace
}  // namespace bulwark
