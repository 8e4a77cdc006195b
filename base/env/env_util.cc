// Shared helpers of the Env interfaces: names, validation and convenience reads.
#include <csignal>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/env/file_system.h"
#include "base/env/process_launcher.h"
#include "base/status/status_macros.h"

namespace bulwark {

absl::string_view FileTypeName(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return "regular file";
    case FileType::kDirectory:
      return "directory";
    case FileType::kSymlink:
      return "symlink";
    case FileType::kOther:
      return "special file";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<ExecutableFile>> ExecutableFile::ShareSealed() const {
  return absl::UnimplementedError(
      absl::StrCat(path(), ": this file's bytes are not a sealed copy, so they are read again"));
}

absl::StatusOr<std::string> FileSystem::ReadFile(absl::string_view path, uint64_t size_max) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, OpenForRead(path));
  std::string out;
  char buffer[64 * 1024];
  while (true) {
    ASSIGN_OR_RETURN(size_t n, file->ReadAt(out.size(), absl::MakeSpan(buffer, sizeof(buffer))));
    if (n == 0) break;
    if (out.size() + n > size_max) {
      return absl::ResourceExhaustedError(
          absl::StrCat("read ", path, ": file is larger than the limit of ", size_max, " bytes"));
    }
    out.append(buffer, n);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<WritableFile>> FileSystem::NewAppendableFile(
    absl::string_view path) {
  return absl::UnimplementedError(
      absl::StrCat("open for append ", path, ": this file system has no appending files"));
}

std::string JoinPath(absl::string_view a, absl::string_view b) {
  while (!a.empty() && a.back() == '/') a.remove_suffix(1);
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  return absl::StrCat(a, "/", b);
}

absl::string_view OutputStreamName(OutputStream stream) {
  return stream == OutputStream::kStdout ? "stdout" : "stderr";
}

std::string ProcessExit::ToString() const {
  if (!signaled) return absl::StrCat("exit code ", code);
  const char* name = sigabbrev_np(signal);
  return absl::StrCat("killed by signal ", signal, name ? absl::StrCat(" (SIG", name, ")") : "",
                      limit.empty() ? "" : absl::StrCat(" at its ", limit, " limit"));
}

absl::Status ValidateProcessOptions(const ProcessOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: argv is empty");
  if (options.argv.size() > kArgvEntriesMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spawn: ", options.argv.size(), " argv entries exceed the limit of ", kArgvEntriesMax));
  }
  if (options.env.size() > kEnvEntriesMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spawn: ", options.env.size(), " env entries exceed the limit of ", kEnvEntriesMax));
  }
  if (options.line_bytes_max == 0 || options.line_bytes_max > kLineBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("spawn: line_bytes_max ", options.line_bytes_max,
                                                   " is outside 1..", kLineBytesMax));
  }
  for (size_t i = 0; i < options.argv.size(); ++i) {
    if (options.argv[i].find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("spawn: argv[", i, "] contains a NUL byte"));
    }
  }
  for (size_t i = 0; i < options.env.size(); ++i) {
    const std::string& entry = options.env[i];
    if (entry.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("spawn: env[", i, "] contains a NUL byte"));
    }
    // Only the name is shown: values may hold secrets.
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("spawn: env[", i, "] is not of the form KEY=value"));
    }
  }
  return absl::OkStatus();
}

}  // namespace bulwark
