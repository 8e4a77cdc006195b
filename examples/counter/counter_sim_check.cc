// The counter's simulation check (see counter_sim_check.h).
#include "examples/counter/counter_sim_check.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace bulwark::examples::counter {

sim::ProbeCheck CounterCheck(int64_t by) {
  return [by](const sim::ProbeRead& read) -> std::string {
    if (read.data.is_null()) return "";  // Nothing yet: the generic check judges that.
    const auto value = read.data.find("value");
    if (value == read.data.end() || !value->is_number_integer()) {
      return absl::StrCat("expected an integer \"value\", got ", read.data.dump());
    }
    const int64_t v = value->get<int64_t>();
    const int64_t low = by * read.writes_surely_before;
    const int64_t high = by * 2 * read.writes_possibly_before;
    if (v < low) return absl::StrCat("value ", v, " < ", low, ": an acknowledged write was lost");
    if (v > high) return absl::StrCat("value ", v, " > ", high, ": more than the writes sent");
    return "";
  };
}

}  // namespace bulwark::examples::counter
