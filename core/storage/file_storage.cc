// FileStorage (see file_storage.h for the layout, the record format and the crash argument).
#include "core/storage/file_storage.h"

#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/status/status_macros.h"
#include "faultinject/failpoint.h"

namespace bulwark {
namespace {

constexpr absl::string_view kRecordMagic = "BWS1";
constexpr size_t kHeaderBytes = 12;
constexpr size_t kChecksumBytes = crypto::kSha256DigestBytes;
constexpr size_t kRecordBytesMax =
    kHeaderBytes + kStorageKeyBytesMax + kStorageValueBytesMax + kChecksumBytes;
constexpr absl::string_view kRecordPrefix = "k-";
constexpr absl::string_view kTempSuffix = ".tmp";
constexpr size_t kRecordNameBytes = 2 + 2 * crypto::kSha256DigestBytes;
constexpr size_t kKeyInMessageBytesMax = 96;

std::string Quote(absl::string_view key) {
  const bool cut = key.size() > kKeyInMessageBytesMax;
  return absl::StrCat("\"", absl::CHexEscape(key.substr(0, kKeyInMessageBytesMax)),
                      cut ? "\"..." : "\"");
}

void PutLe32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string EncodeRecord(absl::string_view key, absl::string_view value) {
  std::string record;
  record.reserve(kHeaderBytes + key.size() + value.size() + kChecksumBytes);
  record.append(kRecordMagic.data(), kRecordMagic.size());
  PutLe32(record, static_cast<uint32_t>(key.size()));
  PutLe32(record, static_cast<uint32_t>(value.size()));
  record.append(key.data(), key.size());
  record.append(value.data(), value.size());
  record.append(crypto::Sha256::Hash(record));
  return record;
}

struct Header {
  uint32_t key_bytes;
  uint32_t value_bytes;
};

// Checks magic and lengths of the first kHeaderBytes of a record; returns what is wrong.
absl::StatusOr<Header> ParseHeader(absl::string_view header) {
  if (header.size() < kHeaderBytes) {
    return absl::DataLossError(absl::StrCat(
        "record is ", header.size(), " bytes, shorter than its ", kHeaderBytes, "-byte header"));
  }
  if (header.substr(0, 4) != kRecordMagic) {
    return absl::DataLossError("record does not start with the magic \"BWS1\"");
  }
  Header h{GetLe32(header.data() + 4), GetLe32(header.data() + 8)};
  if (h.key_bytes == 0 || h.key_bytes > kStorageKeyBytesMax ||
      h.value_bytes > kStorageValueBytesMax) {
    return absl::DataLossError(absl::StrCat("record header gives impossible lengths (key ",
                                            h.key_bytes, ", value ", h.value_bytes, " bytes)"));
  }
  return h;
}

uint64_t RecordBytes(const Header& h) {
  return uint64_t{kHeaderBytes} + h.key_bytes + h.value_bytes + kChecksumBytes;
}

// The directory that holds `path`'s entry, for syncing after creating `path`.
std::string ParentDir(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

bool IsRecordName(absl::string_view name) {
  return name.size() == kRecordNameBytes && absl::StartsWith(name, kRecordPrefix) &&
         IsLowerHex(name.substr(kRecordPrefix.size()));
}

absl::Status CorruptFile(absl::string_view path, absl::string_view key, const absl::Status& why) {
  return absl::DataLossError(absl::StrCat(
      "storage file ", path, key.empty() ? "" : absl::StrCat(" (key ", Quote(key), ")"),
      " is corrupt: ", why.message(), "; restore it from a backup or remove the file"));
}

}  // namespace

std::string FileStorage::FileNameForKey(absl::string_view key) {
  return absl::StrCat(kRecordPrefix, crypto::HexEncode(crypto::Sha256::Hash(key)));
}

absl::StatusOr<std::unique_ptr<FileStorage>> FileStorage::Open(FileSystem& fs,
                                                               absl::string_view dir,
                                                               FailpointSource* failpoints) {
  absl::StatusOr<FileInfo> info = fs.Stat(dir);
  if (absl::IsNotFound(info.status())) {
    RETURN_IF_ERROR(Annotate(fs.CreateDir(dir, 0700), "file storage: create data directory"));
    RETURN_IF_ERROR(
        Annotate(fs.SyncDir(ParentDir(dir)), "file storage: sync parent of data directory"));
  } else if (!info.ok()) {
    return Annotate(info.status(), "file storage: open data directory");
  } else if (info->type != FileType::kDirectory) {
    return absl::FailedPreconditionError(absl::StrCat("file storage: data directory ", dir,
                                                      " is a ", FileTypeName(info->type),
                                                      ", not a directory"));
  }
  std::unique_ptr<FileStorage> storage(new FileStorage(fs, std::string(dir), failpoints));
  RETURN_IF_ERROR(storage->LoadIndex());
  return storage;
}

absl::Status FileStorage::LoadIndex() {
  absl::StatusOr<std::vector<std::string>> names = fs_.ListDir(dir_);
  if (!names.ok()) return Annotate(names.status(), "file storage: list data directory");
  bool removed_temp = false;
  for (const std::string& name : *names) {
    const std::string path = JoinPath(dir_, name);
    if (absl::StartsWith(name, kRecordPrefix) && absl::EndsWith(name, kTempSuffix)) {
      // A Put that never reached its rename: never acknowledged, so dropping it is correct.
      absl::Status removed = fs_.Remove(path);
      if (!removed.ok() && !absl::IsNotFound(removed)) {
        return Annotate(removed, "file storage: remove leftover temporary file");
      }
      removed_temp = true;
      continue;
    }
    if (!IsRecordName(name)) continue;  // Not ours (lost+found, an operator's notes): ignore.

    absl::StatusOr<std::unique_ptr<ReadableFile>> opened = fs_.OpenForRead(path);
    if (!opened.ok()) return Annotate(opened.status(), "file storage: open record");
    std::unique_ptr<ReadableFile> file = *std::move(opened);
    ASSIGN_OR_RETURN(FileInfo file_info, file->Stat());
    char header_bytes[kHeaderBytes];
    ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, absl::MakeSpan(header_bytes, kHeaderBytes)));
    absl::StatusOr<Header> header = ParseHeader(absl::string_view(header_bytes, n));
    if (!header.ok()) return CorruptFile(path, "", header.status());
    if (file_info.size != RecordBytes(*header)) {
      return CorruptFile(
          path, "",
          absl::DataLossError(absl::StrCat(
              "file is ", file_info.size, " bytes but its header implies ", RecordBytes(*header))));
    }
    std::string key(header->key_bytes, '\0');
    ASSIGN_OR_RETURN(n, file->ReadAt(kHeaderBytes, absl::MakeSpan(&key[0], key.size())));
    if (n != key.size()) {
      return CorruptFile(path, "", absl::DataLossError("key is cut short"));
    }
    if (FileNameForKey(key) != name || !ValidateStorageKey(key).ok()) {
      return CorruptFile(path, "", absl::DataLossError("its key does not hash to its file name"));
    }
    keys_.insert(std::move(key));
  }
  if (removed_temp) {
    RETURN_IF_ERROR(Annotate(fs_.SyncDir(dir_), "file storage: sync data directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> FileStorage::Get(absl::string_view key) {
  RETURN_IF_ERROR(ValidateStorageKey(key));
  const std::string path = JoinPath(dir_, FileNameForKey(key));
  absl::StatusOr<std::string> record = fs_.ReadFile(path, kRecordBytesMax);
  if (absl::IsNotFound(record.status())) return std::nullopt;
  if (absl::IsResourceExhausted(record.status())) {
    return CorruptFile(path, key, absl::DataLossError("file is larger than any record"));
  }
  if (!record.ok()) return Annotate(record.status(), absl::StrCat("get ", Quote(key)));

  absl::StatusOr<Header> header = ParseHeader(*record);
  if (!header.ok()) return CorruptFile(path, key, header.status());
  if (record->size() != RecordBytes(*header)) {
    return CorruptFile(
        path, key,
        absl::DataLossError(absl::StrCat("file is ", record->size(),
                                         " bytes but its header implies ", RecordBytes(*header))));
  }
  const absl::string_view body(record->data(), record->size() - kChecksumBytes);
  if (crypto::Sha256::Hash(body) != absl::string_view(*record).substr(body.size())) {
    return CorruptFile(path, key, absl::DataLossError("checksum mismatch"));
  }
  if (body.substr(kHeaderBytes, header->key_bytes) != key) {
    return CorruptFile(path, key, absl::DataLossError("it holds a different key"));
  }
  return record->substr(kHeaderBytes + header->key_bytes, header->value_bytes);
}

absl::Status FileStorage::Put(absl::string_view key, absl::string_view value) {
  RETURN_IF_ERROR(ValidateStorageKey(key));
  if (value.size() > kStorageValueBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("storage value for key ", Quote(key), " is ",
                                                   value.size(), " bytes; the limit is ",
                                                   kStorageValueBytesMax));
  }
  const std::string context = absl::StrCat("put ", Quote(key));
  const std::string path = JoinPath(dir_, FileNameForKey(key));
  const std::string temp = absl::StrCat(path, kTempSuffix);
  const std::string record = EncodeRecord(key, value);

  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.NewWritableFile(temp);
  if (!file.ok()) return Annotate(file.status(), context);
  absl::Status status = (*file)->Append(record);
  if (status.ok()) status = BW_FAILPOINT_STATUS_IN(failpoints_, "storage.file.put.before_sync");
  if (status.ok()) status = (*file)->Sync();
  if (status.ok()) status = BW_FAILPOINT_STATUS_IN(failpoints_, "storage.file.put.after_sync");
  if (status.ok()) status = (*file)->Close();
  if (status.ok()) status = fs_.Rename(temp, path);
  if (!status.ok()) {
    // Best effort: a leftover temporary is harmless and the next Open removes it.
    fs_.Remove(temp).IgnoreError();
    return Annotate(status, context);
  }
  // The new record is visible under its name from here on, durable or not.
  keys_.insert(std::string(key));
  // Planted bug for the simulator's drill (compiled into testonly builds only): acknowledge the
  // write before the rename is durable, so a crash may lose an acknowledged write.
  if (BW_PLANTED_BUG_IN(failpoints_, "bug.storage.file.ack_before_sync")) return absl::OkStatus();
  return Annotate(fs_.SyncDir(dir_), context);
}

absl::Status FileStorage::Delete(absl::string_view key) {
  RETURN_IF_ERROR(ValidateStorageKey(key));
  const std::string context = absl::StrCat("delete ", Quote(key));
  absl::Status removed = fs_.Remove(JoinPath(dir_, FileNameForKey(key)));
  if (!removed.ok() && !absl::IsNotFound(removed)) return Annotate(removed, context);
  if (auto it = keys_.find(key); it != keys_.end()) keys_.erase(it);
  RETURN_IF_ERROR(
      Annotate(BW_FAILPOINT_STATUS_IN(failpoints_, "storage.file.delete.before_sync"), context));
  return Annotate(fs_.SyncDir(dir_), context);
}

absl::StatusOr<std::vector<std::string>> FileStorage::List(absl::string_view prefix) {
  std::vector<std::string> keys;
  for (auto it = keys_.lower_bound(prefix); it != keys_.end() && absl::StartsWith(*it, prefix);
       ++it) {
    keys.push_back(*it);
  }
  return keys;
}

}  // namespace bulwark
