// Line splitting with a hard cap on buffered bytes.
#include "base/env/line_splitter.h"

#include "base/status/check.h"

namespace bulwark {

LineSplitter::LineSplitter(size_t line_bytes_max) : line_bytes_max_(line_bytes_max) {
  CHECK(line_bytes_max_ > 0);
}

void LineSplitter::Feed(absl::string_view bytes, LineFn fn) {
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    const bool complete = newline != absl::string_view::npos;
    absl::string_view piece = bytes.substr(0, complete ? newline : bytes.size());
    bytes.remove_prefix(complete ? newline + 1 : bytes.size());
    if (discarding_) {
      discarding_ = !complete;
      continue;
    }
    const size_t room = line_bytes_max_ - pending_.size();
    if (piece.size() > room) {
      // Longer than the cap: emit what fits now and drop the rest of the line.
      pending_.append(piece.data(), room);
      fn(pending_, /*truncated=*/true);
      pending_.clear();
      discarding_ = !complete;
    } else if (!complete) {
      pending_.append(piece.data(), piece.size());
    } else if (pending_.empty()) {
      fn(piece, /*truncated=*/false);
    } else {
      pending_.append(piece.data(), piece.size());
      fn(pending_, /*truncated=*/false);
      pending_.clear();
    }
  }
}

void LineSplitter::Finish(LineFn fn) {
  if (!pending_.empty()) fn(pending_, /*truncated=*/false);
  pending_.clear();
  discarding_ = false;
}

}  // namespace bulwark
