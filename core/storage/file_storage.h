// FileStorage: the durable Storage backend, one file per key in a flat data directory, written
// through the Env FileSystem so that the simulator can crash it at any instant.
#ifndef BULWARK_CORE_STORAGE_FILE_STORAGE_H_
#define BULWARK_CORE_STORAGE_FILE_STORAGE_H_

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/env/failpoint_source.h"
#include "base/env/file_system.h"
#include "base/storage/storage.h"

namespace bulwark {

// On-disk layout. The data directory is flat: key K lives in the regular file
//
//   k-<lower-case hex SHA-256 of K>          (66 bytes, whatever K is)
//
// so no key, however hostile ("../../etc/passwd", '%', NUL, 1 KiB of bytes), can name a path
// outside the directory, a subdirectory, or a name longer than NAME_MAX (255): a escaped
// file name would need up to 3 bytes per key byte and so could not hold a 1 KiB key. The key
// itself is stored inside the file, which is a record:
//
//   offset 0   4 bytes  magic "BWS1"
//          4   4 bytes  key length k, little-endian
//          8   4 bytes  value length v, little-endian
//         12   k bytes  the key
//     12 + k   v bytes  the value
// 12 + k + v  32 bytes  SHA-256 of bytes [0, 12 + k + v)
//
// Open() reads each record's header and key (not its value), checks that the key hashes to the
// file name, and keeps the set of keys in memory, so List() does no I/O and returns the original
// keys sorted. Get() reads one file and verifies the checksum and the key.
//
// Writes. Put writes the record to "k-<hash>.tmp", syncs it, closes it, renames it over
// "k-<hash>" and syncs the directory; it returns OK only after that last sync. Delete removes
// the file and syncs the directory. A crash at any instant therefore leaves, under the final
// name, either the previous complete record or the new complete record (rename is atomic and the
// new record was synced before it), plus perhaps a stray "*.tmp", which is never read and is
// removed by the next Open. Names that are neither records nor temporaries are left alone.
//
// One FileStorage per directory: two objects (or processes) over the same directory would race.
// Single-threaded. Errors, beyond those in storage.h:
//   kDataLoss            a record is corrupt (bad magic, lengths, key or checksum); the message
//                        names the file, the key when known, and what to do
//   FileSystem errors    annotated with the operation and the key
class FileStorage final : public Storage {
 public:
  // Opens the data directory `dir`, creating it (mode 0700; its parent must exist) and syncing
  // its parent if it does not exist, removes leftover "*.tmp" files from an interrupted Put
  // (then syncs the directory), and indexes the keys of every record.
  //
  // Errors: kFailedPrecondition if `dir` is not a directory; kDataLoss if a record file's header
  // is corrupt or its key does not hash to its name; FileSystem errors otherwise. `failpoints`
  // is the node's (Env::failpoints): where this storage's failpoint sites look.
  static absl::StatusOr<std::unique_ptr<FileStorage>> Open(FileSystem& fs, absl::string_view dir,
                                                           FailpointSource* failpoints = nullptr);

  FileStorage(const FileStorage&) = delete;
  FileStorage& operator=(const FileStorage&) = delete;

  // Reads and verifies the key's record. kDataLoss if the record is corrupt.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override;
  // Durable on OK: record synced, renamed into place, directory synced.
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  // Durable on OK: file removed, directory synced (also when the key did not exist, so that a
  // retried Delete makes an earlier unsynced removal durable).
  absl::Status Delete(absl::string_view key) override;
  // Served from the in-memory key index; any prefix is accepted.
  absl::StatusOr<std::vector<std::string>> List(absl::string_view prefix) override;

  // The name of the file in the data directory that holds `key` ("k-" + hex SHA-256).
  static std::string FileNameForKey(absl::string_view key);

  const std::string& dir() const { return dir_; }

 private:
  FileStorage(FileSystem& fs, std::string dir, FailpointSource* failpoints)
      : fs_(fs), dir_(std::move(dir)), failpoints_(failpoints) {}

  absl::Status LoadIndex();

  FileSystem& fs_;
  std::string dir_;
  FailpointSource* failpoints_;
  // Every key with a record under its final name in the live directory.
  std::set<std::string, std::less<>> keys_;
};

}  // namespace bulwark

#endif  // BULWARK_CORE_STORAGE_FILE_STORAGE_H_
