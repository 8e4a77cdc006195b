#include "server/etcd/etcd_storage.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/storage/storage_errors.h"
#include "faultinject/failpoint.h"

namespace bulwark::etcd {
namespace {

// Keys per Range page of a List.
constexpr int64_t kListPageKeys = 1000;

}  // namespace

std::string NormalizePath(absl::string_view path) {
  std::string out = absl::StrCat("/", absl::StripPrefix(path, "/"));
  if (!absl::EndsWith(out, "/")) out += "/";
  return out;
}

EtcdStorage::EtcdStorage(Client& client, absl::string_view path)
    : client_(client), path_(NormalizePath(path)) {}

absl::StatusOr<std::optional<std::string>> EtcdStorage::Get(absl::string_view key) {
  if (absl::Status s = ValidateStorageKey(key); !s.ok()) return s;
  const bool cache = CacheUsable();
  if (cache) {
    if (auto it = cache_.find(key); it != cache_.end()) {
      ++cached_reads_;
      return it->second;
    }
  }
  etcdserverpb::RangeRequest range;
  range.set_key(absl::StrCat(path_, key));
  absl::StatusOr<etcdserverpb::RangeResponse> r = client_.Range(range);
  if (!r.ok()) return r.status();
  std::optional<std::string> value;
  if (r->kvs_size() > 0) value = std::move(*r->mutable_kvs(0)->mutable_value());
  if (cache) Remember(key, value);
  return value;
}

bool EtcdStorage::CacheUsable() {
  if (mode_ == Mode::kFenced) return window_ && window_->Open();
  if (mode_ != Mode::kReadOnly || !watched_ || health_ == nullptr) return false;
  // A break of the watch may have delayed events: what was remembered before it may be stale.
  const uint64_t epoch = health_->epoch();
  if (epoch != cache_epoch_) {
    Forget();
    cache_epoch_ = epoch;
  }
  return health_->Live() && health_->epoch() == epoch &&
         watched_revision_ >= awaited_revision_.load();
}

void EtcdStorage::BeginWatchedReads() {
  Forget();
  watched_ = true;
  if (health_ != nullptr) cache_epoch_ = health_->epoch();
}

void EtcdStorage::EndWatchedReads() {
  Forget();
  watched_ = false;
}

void EtcdStorage::Changed(const std::vector<ha::WatchEvent>& events) {
  for (const ha::WatchEvent& e : events) {
    watched_revision_ = std::max(watched_revision_, e.revision);
    // The active node's own cache is kept by fencing, not by the watch.
    if (mode_ == Mode::kReadOnly) Drop(e.key);
  }
}

void EtcdStorage::AwaitRevision(int64_t revision) {
  int64_t seen = awaited_revision_.load();
  while (seen < revision && !awaited_revision_.compare_exchange_weak(seen, revision)) {
  }
}

void EtcdStorage::NoteRevision(int64_t revision) {
  int64_t seen = last_write_revision_.load();
  while (seen < revision && !last_write_revision_.compare_exchange_weak(seen, revision)) {
  }
}

void EtcdStorage::Drop(absl::string_view key) {
  if (auto it = cache_.find(key); it != cache_.end()) {
    cache_bytes_ -= it->first.size() + it->second.value_or("").size();
    cache_.erase(it);
  }
}

void EtcdStorage::Remember(absl::string_view key, std::optional<std::string> value) {
  Drop(key);
  const size_t bytes = key.size() + value.value_or("").size();
  if (cache_bytes_ + bytes > kReadCacheBytesMax) Forget();
  cache_bytes_ += bytes;
  cache_.emplace(std::string(key), std::move(value));
}

void EtcdStorage::Forget() {
  cache_.clear();
  cache_bytes_ = 0;
}

absl::Status EtcdStorage::CheckWritable(absl::string_view key) const {
  if (absl::Status s = ValidateStorageKey(key); !s.ok()) return s;
  if (absl::StartsWith(key, kLockPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("storage keys under \"", kLockPrefix, "\" are reserved for the HA lock"));
  }
  if (mode_ == Mode::kReadOnly) return ReadOnlyError();
  return absl::OkStatus();
}

absl::Status EtcdStorage::Write(absl::string_view operation, etcdserverpb::RequestOp op) {
  // What the cache must say about the key afterwards: the new value, or (when the outcome is
  // not known) nothing.
  const std::string key = op.has_request_put()
                              ? op.request_put().key().substr(path_.size())
                              : op.request_delete_range().key().substr(path_.size());
  std::optional<std::string> value;
  if (op.has_request_put()) value = op.request_put().value();
  absl::Status s = WriteThrough(operation, std::move(op));
  if (IsFenced(s)) {
    Forget();
  } else {
    Drop(key);
  }
  if (s.ok() && CacheUsable()) Remember(key, std::move(value));
  return s;
}

absl::Status EtcdStorage::WriteThrough(absl::string_view operation, etcdserverpb::RequestOp op) {
  // The planted bug writes unconditionally even when fenced: a deposed active's writes land
  // (what Vault's etcd backend does), which the one-writer tests must catch.
  if (mode_ == Mode::kUnfenced || BW_PLANTED_BUG("bug.etcd.unfenced_write")) {
    if (op.has_request_put()) {
      absl::StatusOr<etcdserverpb::PutResponse> r = client_.Put(op.request_put());
      if (r.ok()) NoteRevision(r->header().revision());
      return r.status();
    }
    absl::StatusOr<etcdserverpb::DeleteRangeResponse> r =
        client_.DeleteRange(op.request_delete_range());
    if (r.ok()) NoteRevision(r->header().revision());
    return r.status();
  }
  // Fenced: CREATE_REVISION(lock entry) == won revision, else nothing is applied. A missing
  // entry compares as revision 0, which no grant has.
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* cmp = txn.add_compare();
  cmp->set_key(fence_.lock_key);
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(fence_.revision);
  *txn.add_success() = std::move(op);
  absl::StatusOr<etcdserverpb::TxnResponse> r = client_.Txn(txn);
  if (!r.ok()) return r.status();
  if (!r->succeeded()) {
    const ha::LockGrant fence = fence_;  // The listener may change the mode.
    NotifyFenced(fence);
    return FencedError(absl::StrCat(operation, " refused: the lock entry created at revision ",
                                    fence.revision, " is gone"));
  }
  NoteRevision(r->header().revision());
  return absl::OkStatus();
}

absl::Status EtcdStorage::Put(absl::string_view key, absl::string_view value) {
  if (absl::Status s = CheckWritable(key); !s.ok()) return s;
  if (value.size() > kStorageValueBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("storage value is ", value.size(),
                                                   " bytes; the limit is ", kStorageValueBytesMax));
  }
  etcdserverpb::RequestOp op;
  etcdserverpb::PutRequest* put = op.mutable_request_put();
  put->set_key(absl::StrCat(path_, key));
  put->set_value(std::string(value));
  return Write("Put", std::move(op));
}

absl::Status EtcdStorage::Delete(absl::string_view key) {
  if (absl::Status s = CheckWritable(key); !s.ok()) return s;
  etcdserverpb::RequestOp op;
  op.mutable_request_delete_range()->set_key(absl::StrCat(path_, key));
  return Write("Delete", std::move(op));
}

absl::StatusOr<std::vector<std::string>> EtcdStorage::List(absl::string_view prefix) {
  const std::string start = absl::StrCat(path_, prefix);
  const std::string end = PrefixEnd(start);
  const std::string lock = absl::StrCat(path_, kLockPrefix);
  std::vector<std::string> keys;
  etcdserverpb::RangeRequest range;
  range.set_key(start);
  range.set_range_end(end);
  range.set_keys_only(true);
  range.set_limit(kListPageKeys);
  for (;;) {
    absl::StatusOr<etcdserverpb::RangeResponse> r = client_.Range(range);
    if (!r.ok()) return r.status();
    for (const mvccpb::KeyValue& kv : r->kvs()) {
      if (absl::StartsWith(kv.key(), lock)) continue;
      keys.push_back(kv.key().substr(path_.size()));
    }
    if (!r->more() || r->kvs_size() == 0) break;
    // Pin later pages to the first page's revision, so the listing is one snapshot.
    if (range.revision() == 0) range.set_revision(r->header().revision());
    range.set_key(r->kvs(r->kvs_size() - 1).key() + std::string(1, '\0'));
  }
  return keys;  // etcd returns keys in byte order.
}

void EtcdStorage::Unfence() {
  Forget();
  mode_ = Mode::kUnfenced;
}

void EtcdStorage::MakeReadOnly() {
  Forget();
  mode_ = Mode::kReadOnly;
}

void EtcdStorage::FenceOn(const ha::LockGrant& grant) {
  Forget();
  mode_ = Mode::kFenced;
  fence_ = grant;
}

}  // namespace bulwark::etcd
