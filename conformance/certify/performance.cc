// A benchmark record's summary in the certificate (see performance.h).
#include "conformance/certify/performance.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace bulwark::conformance {
namespace {

using nlohmann::json;

std::string Sha256Of(const json& object) {
  const json plugin = object.value("plugin", json::object());
  return plugin.is_object() && plugin.contains("sha256") && plugin.at("sha256").is_string()
             ? plugin.at("sha256").get<std::string>()
             : "";
}

std::string Number(const json& value) {
  if (!value.is_number()) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.1f", value.get<double>());
  return text;
}

}  // namespace

absl::Status AddPerformance(const json& record, const std::string& origin, json* certificate) {
  if (!record.is_object() || record.value("format", "") != kBenchmarkRecordFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, " is not a benchmark record (format ", kBenchmarkRecordFormat,
                     "): give the record.json that plugin_benchmark writes"));
  }
  const std::string measured = Sha256Of(record);
  const std::string certified = Sha256Of(*certificate);
  if (measured.empty() || measured != certified) {
    return absl::FailedPreconditionError(absl::StrCat(
        origin, " measured another plugin binary (SHA-256 ", measured.empty() ? "none" : measured,
        ") than the one certified (SHA-256 ", certified,
        "): benchmark the binary you certify, in the same build (bazel run -c opt <your "
        "plugin_benchmark target>), and pass that record"));
  }
  json metrics = json::array();
  for (const json& m : record.value("metrics", json::array())) {
    if (!m.is_object() || !m.contains("summary")) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, " has a metric without a summary (", m.is_object() ? m.value("name", "?") : "?",
          "): it is a runner's raw output; give the record.json that plugin_benchmark writes"));
    }
    metrics.push_back({{"name", m.value("name", "")},
                       {"kind", m.value("kind", "")},
                       {"unit", m.value("unit", "")},
                       {"summary", m.at("summary")}});
  }
  const json build = record.value("build", json::object());
  const std::string mode =
      build.is_object() ? build.value("compilation_mode", "unknown") : std::string("unknown");
  json performance = {
      {"source", origin},
      {"plugin_sha256", measured},
      {"build", build},
      {"optimised", mode == "opt"},
      {"machine", record.value("machine", json::object())},
      {"run_mode", record.value("run_mode", "unknown")},
      {"rounds", record.value("rounds", 0)},
      {"started", record.value("started", "")},
      {"notes", record.value("notes", json::array())},
      {"metrics", metrics},
  };
  if (mode != "opt") {
    performance["warning"] = absl::StrCat("measured in a compilation_mode=", mode,
                                          " build, not an optimised one: not representative of "
                                          "the plugin's performance");
  }
  if (record.value("run_mode", "") == "quick") {
    performance["warning"] =
        absl::StrCat(performance.value("warning", ""), performance.contains("warning") ? "; " : "",
                     "a quick run (one round, few calls): a smoke test, not a measurement");
  }
  (*certificate)["performance"] = std::move(performance);
  return absl::OkStatus();
}

std::string RenderPerformanceMarkdown(const json& certificate) {
  if (!certificate.contains("performance")) return "";
  const json& p = certificate.at("performance");
  const json build = p.value("build", json::object());
  const json machine = p.value("machine", json::object());
  std::string out = "\n## Performance\n\n";
  if (p.contains("warning")) absl::StrAppend(&out, "**", p.value("warning", ""), "**\n\n");
  absl::StrAppend(&out, "- benchmark record: ", p.value("source", ""),
                  "\n- the certified binary (SHA-256 matched)\n- build: ",
                  build.value("compilation_mode", "unknown"), " (",
                  build.value("target_cpu", "unknown"), ")",
                  p.value("optimised", false) ? "" : " — NOT optimised",
                  "\n- machine: ", machine.value("cpu_model", "?"), ", ", machine.value("cores", 0),
                  " cores, load average ", machine.value("load_average", json()).dump(),
                  "\n- run: ", p.value("run_mode", "?"), ", ", p.value("rounds", 0),
                  " round(s), started ", p.value("started", ""), "\n\n");
  absl::StrAppend(
      &out, "| metric | unit | p50 / median | p99 | p99.9 |\n| --- | --- | --- | --- | --- |\n");
  for (const json& m : p.value("metrics", json::array())) {
    const json s = m.value("summary", json::object());
    const bool latency = m.value("kind", "") == "latency";
    absl::StrAppend(&out, "| ", m.value("name", ""), " | ", m.value("unit", ""), " | ",
                    Number(latency ? s.value("p50", json()) : s.value("median", json())), " | ",
                    latency ? Number(s.value("p99", json())) : "-", " | ",
                    latency ? Number(s.value("p99.9", json())) : "-", " |\n");
  }
  return out;
}

}  // namespace bulwark::conformance
