// The crash report's handler (see crash_report.h). Everything the handler touches is static and
// formatted in advance: it calls only write(2), sigaction(2) and raise(3).
#include "sim/crash_report.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace bulwark::sim {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr absl::string_view kCut = "...(cut)\n";
constexpr size_t kAltStackBytes = 64 * 1024;

// Two buffers: ArmCrashReport fills the one the handler is not reading, then publishes it.
char g_text[2][kCrashReportBytesMax];
size_t g_size[2];
std::atomic<int> g_armed{-1};  // The buffer to write; -1: none.
char g_alt_stack[kAltStackBytes];

void WriteAll(const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(STDERR_FILENO, data, size);
    if (n <= 0) return;
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void WriteString(const char* text) { WriteAll(text, std::strlen(text)); }

const char* SignalName(int signal) {
  switch (signal) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    default:
      return "a signal";
  }
}

void OnFatalSignal(int signal) {
  // SA_RESETHAND has restored the default action; the signal is blocked until we return.
  WriteString("\nbulwark sim: died on ");
  WriteString(SignalName(signal));
  const int armed = g_armed.load(std::memory_order_acquire);
  if (armed >= 0) {
    WriteString(" while running ");
    WriteAll(g_text[armed], g_size[armed]);
  } else {
    WriteString(" outside any seed\n");
  }
  ::raise(signal);
}

}  // namespace

void InstallCrashReport() {
  stack_t stack = {};
  stack.ss_sp = g_alt_stack;
  stack.ss_size = sizeof(g_alt_stack);
  ::sigaltstack(&stack, nullptr);
  struct sigaction action = {};
  action.sa_handler = OnFatalSignal;
  action.sa_flags = SA_RESETHAND | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  for (int signal : kSignals) ::sigaction(signal, &action, nullptr);
}

void ArmCrashReport(absl::string_view text) {
  const int next = g_armed.load(std::memory_order_relaxed) == 0 ? 1 : 0;
  size_t size = text.size();
  if (size > kCrashReportBytesMax) {
    size = kCrashReportBytesMax - kCut.size();
    std::memcpy(g_text[next], text.data(), size);
    std::memcpy(g_text[next] + size, kCut.data(), kCut.size());
    size += kCut.size();
  } else {
    std::memcpy(g_text[next], text.data(), size);
  }
  g_size[next] = size;
  g_armed.store(next, std::memory_order_release);
}

void DisarmCrashReport() { g_armed.store(-1, std::memory_order_release); }

}  // namespace bulwark::sim
