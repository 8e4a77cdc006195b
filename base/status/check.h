// Always-on assertions for programmer errors. A failed CHECK prints the condition, the location
// and any streamed message to stderr, then aborts, in every build mode. Never CHECK a condition
// the environment or a caller can cause: return an absl::Status for those.
//
//   CHECK(timer_count_ < kTimersMax) << "timer set overflow: " << timer_count_;
#ifndef BULWARK_BASE_STATUS_CHECK_H_
#define BULWARK_BASE_STATUS_CHECK_H_

#include <sstream>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace bulwark::internal {

// Collects the message of a failed CHECK and aborts when destroyed.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure();

  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace bulwark::internal

// The `while` makes the streamed message part of the statement and evaluates it only on failure.
#define CHECK(condition)                   \
  while (ABSL_PREDICT_FALSE(!(condition))) \
  ::bulwark::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

// Checks that an absl::Status or absl::StatusOr expression is OK; prints the status if not.
#define CHECK_OK(expr)                                                                   \
  for (const ::absl::Status bulwark_check_status_ = ::bulwark::internal::StatusOf(expr); \
       ABSL_PREDICT_FALSE(!bulwark_check_status_.ok());)                                 \
  ::bulwark::internal::CheckFailure(__FILE__, __LINE__, #expr " is OK").stream()         \
      << bulwark_check_status_ << " "

#endif  // BULWARK_BASE_STATUS_CHECK_H_
