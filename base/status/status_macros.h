// Early-return helpers for absl::Status and absl::StatusOr (abseil 20220623 ships none).
//
//   absl::Status Load() {
//     RETURN_IF_ERROR(fs.CreateDir(dir));
//     ASSIGN_OR_RETURN(std::string bytes, fs.ReadFile(path));
//     ...
//   }
#ifndef BULWARK_BASE_STATUS_STATUS_MACROS_H_
#define BULWARK_BASE_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bulwark {

// Returns `status` with `context` and ": " put before its message; the code is kept. OK stays OK.
// Use it to say which operation failed ("open /data/x: permission denied").
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace bulwark

#define BULWARK_STATUS_CONCAT_INNER_(a, b) a##b
#define BULWARK_STATUS_CONCAT_(a, b) BULWARK_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                                              \
  do {                                                                     \
    ::absl::Status bulwark_status_ = (expr);                               \
    if (ABSL_PREDICT_FALSE(!bulwark_status_.ok())) return bulwark_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status from the enclosing
// function, otherwise move-assigns the value to `lhs`, which may be a declaration.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  BULWARK_ASSIGN_OR_RETURN_IMPL_(BULWARK_STATUS_CONCAT_(bulwark_statusor_, __LINE__), lhs, rexpr)

#define BULWARK_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr)                   \
  auto statusor = (rexpr);                                                     \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // BULWARK_BASE_STATUS_STATUS_MACROS_H_
