// Splits a byte stream into lines with a length cap. Shared by the real and simulated process
// launchers so both deliver output with the same truncation rules.
#ifndef BULWARK_BASE_ENV_LINE_SPLITTER_H_
#define BULWARK_BASE_ENV_LINE_SPLITTER_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace bulwark {

class LineSplitter {
 public:
  using LineFn = absl::FunctionRef<void(absl::string_view line, bool truncated)>;

  // REQUIRES: line_bytes_max > 0.
  explicit LineSplitter(size_t line_bytes_max);

  // Feeds bytes; calls `fn` for each completed line (without '\n'). A line that reaches
  // line_bytes_max without a newline is emitted at once, truncated, and the remainder of that
  // line is dropped up to and including its newline. Memory use never exceeds line_bytes_max.
  void Feed(absl::string_view bytes, LineFn fn);

  // Ends the stream: emits a pending partial line, if any.
  void Finish(LineFn fn);

 private:
  size_t line_bytes_max_;
  std::string pending_;
  bool discarding_ = false;  // Inside the tail of a line that was already emitted truncated.
};

}  // namespace bulwark

#endif  // BULWARK_BASE_ENV_LINE_SPLITTER_H_
