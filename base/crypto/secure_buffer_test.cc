// Tests for SecureBuffer: contents, wiping on Clear(), and ownership through moves.
#include "base/crypto/secure_buffer.h"

#include <utility>

#include "gtest/gtest.h"

namespace bulwark::crypto {
namespace {

TEST(SecureBufferTest, DefaultIsEmpty) {
  SecureBuffer buffer;
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_TRUE(buffer.IsZero());
  buffer.Clear();  // Harmless on an empty buffer.
}

TEST(SecureBufferTest, SizedIsZeroFilled) {
  SecureBuffer buffer(32);
  EXPECT_EQ(buffer.size(), 32u);
  EXPECT_TRUE(buffer.IsZero());
  buffer.data()[31] = 1;
  EXPECT_FALSE(buffer.IsZero());
}

TEST(SecureBufferTest, CopiesBytesAndClearZeroesThemKeepingTheSize) {
  SecureBuffer buffer(absl::string_view("key material"));
  EXPECT_EQ(buffer.view(), "key material");
  EXPECT_FALSE(buffer.IsZero());
  buffer.Clear();
  EXPECT_EQ(buffer.size(), 12u);
  EXPECT_TRUE(buffer.IsZero());
  EXPECT_EQ(buffer.view(), absl::string_view("\0\0\0\0\0\0\0\0\0\0\0\0", 12));
}

TEST(SecureBufferTest, MoveTransfersOwnership) {
  SecureBuffer source(absl::string_view("secret"));
  const uint8_t* bytes = source.data();
  SecureBuffer target(std::move(source));
  EXPECT_EQ(target.data(), bytes);
  EXPECT_EQ(target.view(), "secret");
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): documented state.

  SecureBuffer other(absl::string_view("other"));
  other = std::move(target);
  EXPECT_EQ(other.view(), "secret");
  EXPECT_TRUE(target.empty());  // NOLINT(bugprone-use-after-move)
}

TEST(SecureBufferTest, CloneIsIndependent) {
  SecureBuffer original(absl::string_view("abc"));
  SecureBuffer copy = original.Clone();
  original.Clear();
  EXPECT_EQ(copy.view(), "abc");
  EXPECT_NE(copy.data(), original.data());
}

}  // namespace
}  // namespace bulwark::crypto
