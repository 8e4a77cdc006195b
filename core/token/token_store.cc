// Token records, their child index and revocation order.
#include "core/token/token_store.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/crypto/sha256.h"
#include "base/status/status_macros.h"

namespace bulwark::token {
namespace {

using Json = nlohmann::json;

constexpr int kRecordVersion = 1;
constexpr absl::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

absl::Status PermissionDenied() { return absl::PermissionDeniedError("permission denied"); }

std::string IdKey(absl::string_view hash) { return absl::StrCat(kStoragePrefix, "id/", hash); }

std::string ChildrenPrefix(absl::string_view hash) {
  return absl::StrCat(kStoragePrefix, "parent/", hash, "/");
}

int64_t UnixSeconds(absl::Time t) { return absl::ToUnixSeconds(t); }

// Go's time.Duration formatting for whole seconds ("768h0m0s"), as Vault's warnings print it.
std::string GoDuration(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  return absl::StrFormat("%dh%dm%ds", s / 3600, (s / 60) % 60, s % 60);
}

absl::Status DataLoss(absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("token record is corrupt: ", what, "; revoke the token and create a new one"));
}

}  // namespace

std::string TokenHash(absl::string_view token) {
  return crypto::HexEncode(crypto::Sha256::Hash(token));
}

absl::Status ValidateCustomId(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("a custom token id must not be empty");
  if (id.size() > kCustomIdBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("a custom token id is at most ", kCustomIdBytesMax, " bytes"));
  }
  for (char c : id) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          "a custom token id may hold only printable ASCII characters without spaces");
    }
  }
  return absl::OkStatus();
}

std::string EncodeTokenEntry(const TokenEntry& e) {
  Json j = {
      {"v", kRecordVersion},
      {"accessor", e.accessor},
      {"policies", e.policies},
      {"path", e.path},
      {"display_name", e.display_name},
      {"meta", e.meta},
      {"creation_time", UnixSeconds(e.creation_time)},
      {"ttl", absl::ToInt64Seconds(e.ttl)},
      {"expire_time", e.expire_time.has_value() ? Json(UnixSeconds(*e.expire_time)) : Json()},
      {"depth", e.depth},
      {"parent", e.parent_hash},
  };
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<TokenEntry> DecodeTokenEntry(absl::string_view text) {
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return DataLoss("not a JSON object");
  auto str = [&](const char* k) -> const Json* {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? &*it : nullptr;
  };
  auto num = [&](const char* k) -> const Json* {
    auto it = j.find(k);
    return it != j.end() && it->is_number_integer() ? &*it : nullptr;
  };
  const Json* version = num("v");
  if (version == nullptr || version->get<int64_t>() != kRecordVersion) {
    return DataLoss("unknown version");
  }
  TokenEntry e;
  const Json *accessor = str("accessor"), *path = str("path"), *name = str("display_name"),
             *parent = str("parent");
  const Json *created = num("creation_time"), *ttl = num("ttl"), *depth = num("depth");
  if (!accessor || !path || !name || !parent || !created || !ttl || !depth) {
    return DataLoss("a field is missing or has the wrong type");
  }
  e.accessor = accessor->get<std::string>();
  e.path = path->get<std::string>();
  e.display_name = name->get<std::string>();
  e.parent_hash = parent->get<std::string>();
  e.creation_time = absl::FromUnixSeconds(created->get<int64_t>());
  e.ttl = absl::Seconds(ttl->get<int64_t>());
  e.depth = static_cast<int>(depth->get<int64_t>());
  auto policies = j.find("policies");
  auto meta = j.find("meta");
  auto expire = j.find("expire_time");
  if (policies == j.end() || !policies->is_array() || meta == j.end() || !meta->is_object() ||
      expire == j.end() || !(expire->is_null() || expire->is_number_integer())) {
    return DataLoss("policies, meta or expire_time has the wrong type");
  }
  for (const Json& p : *policies) {
    if (!p.is_string()) return DataLoss("a policy is not a string");
    e.policies.push_back(p.get<std::string>());
  }
  for (auto it = meta->begin(); it != meta->end(); ++it) {
    if (!it->is_string()) return DataLoss("a meta value is not a string");
    e.meta[it.key()] = it->get<std::string>();
  }
  if (expire->is_number_integer()) e.expire_time = absl::FromUnixSeconds(expire->get<int64_t>());
  return e;
}

TokenStore::TokenStore(Storage& storage, Clock& clock, Random& random)
    : storage_(storage), clock_(clock), random_(random) {}

std::string TokenStore::RandomBase62(size_t n) {
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(kBase62[random_.Uniform(kBase62.size())]);
  return out;
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::Read(absl::string_view hash) {
  ASSIGN_OR_RETURN(std::optional<std::string> raw, storage_.Get(IdKey(hash)));
  if (!raw.has_value()) return std::optional<TokenEntry>();
  ASSIGN_OR_RETURN(TokenEntry entry, DecodeTokenEntry(*raw));
  return std::optional<TokenEntry>(std::move(entry));
}

absl::StatusOr<CreatedToken> TokenStore::Store(absl::string_view id, TokenEntry entry) {
  CreatedToken created;
  created.token = id.empty() ? absl::StrCat(kServiceTokenPrefix, RandomBase62(kTokenRandomChars))
                             : std::string(id);
  const std::string hash = TokenHash(created.token);
  ASSIGN_OR_RETURN(std::optional<std::string> existing, storage_.Get(IdKey(hash)));
  if (existing.has_value()) {
    return absl::AlreadyExistsError("a token with this id already exists");
  }
  entry.accessor = RandomBase62(kAccessorChars);
  // The child index first: a crash after it leaves an index entry to nothing, which revocation
  // skips; the other order could leave a child that survives its parent's revocation.
  if (!entry.parent_hash.empty()) {
    RETURN_IF_ERROR(storage_.Put(absl::StrCat(ChildrenPrefix(entry.parent_hash), hash), "1"));
  }
  RETURN_IF_ERROR(storage_.Put(IdKey(hash), EncodeTokenEntry(entry)));
  created.entry = std::move(entry);
  return created;
}

absl::StatusOr<CreatedToken> TokenStore::CreateRoot(absl::string_view id) {
  if (!id.empty()) RETURN_IF_ERROR(ValidateCustomId(id));
  TokenEntry e;
  e.policies = {"root"};
  e.path = "auth/token/root";
  e.display_name = "root";
  e.creation_time = absl::FromUnixSeconds(UnixSeconds(clock_.WallNow()));
  e.ttl = absl::ZeroDuration();
  return Store(id, std::move(e));
}

absl::StatusOr<CreatedToken> TokenStore::CreateChild(absl::string_view parent,
                                                     const CreateRequest& request) {
  ASSIGN_OR_RETURN(TokenEntry p, Lookup(parent));
  if (p.depth >= kTokenDepthMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("token chains are at most ", kTokenDepthMax, " children deep"));
  }
  if (!request.id.empty()) RETURN_IF_ERROR(ValidateCustomId(request.id));
  if (request.display_name.size() > kDisplayNameBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("display_name is at most ", kDisplayNameBytesMax, " bytes"));
  }
  if (request.meta.size() > kMetaMax) {
    return absl::InvalidArgumentError(absl::StrCat("meta holds at most ", kMetaMax, " entries"));
  }
  for (const auto& [k, v] : request.meta) {
    if (k.empty() || k.size() > kMetaKeyBytesMax || v.size() > kMetaValueBytesMax) {
      return absl::InvalidArgumentError(absl::StrCat("meta keys are 1..", kMetaKeyBytesMax,
                                                     " bytes and values at most ",
                                                     kMetaValueBytesMax, " bytes"));
    }
  }
  CreatedToken warnings_only;
  absl::Duration ttl = request.ttl.value_or(absl::ZeroDuration());
  if (ttl < absl::ZeroDuration()) return absl::InvalidArgumentError("ttl must not be negative");
  if (ttl == absl::ZeroDuration()) ttl = kDefaultTtl;
  ttl = absl::Trunc(ttl, absl::Seconds(1));
  if (ttl == absl::ZeroDuration()) ttl = absl::Seconds(1);
  if (ttl > kMaxTtl) {
    warnings_only.warnings.push_back(
        absl::StrCat("TTL of \"", GoDuration(ttl), "\" exceeded the effective max_ttl of \"",
                     GoDuration(kMaxTtl), "\"; TTL value is capped accordingly"));
    ttl = kMaxTtl;
  }
  const absl::Time now = absl::FromUnixSeconds(UnixSeconds(clock_.WallNow()));
  absl::Time expire = now + ttl;
  if (p.expire_time.has_value() && expire > *p.expire_time) {
    expire = *p.expire_time;
    ttl = std::max(expire - now, absl::ZeroDuration());
    warnings_only.warnings.push_back("TTL capped by the parent token's expiry");
  }
  TokenEntry e;
  e.policies = p.policies;
  e.path = "auth/token/create";
  e.display_name = request.display_name.empty() ? "token" : "token-" + request.display_name;
  e.meta = request.meta;
  e.creation_time = now;
  e.ttl = ttl;
  e.expire_time = expire;
  e.depth = p.depth + 1;
  e.parent_hash = TokenHash(parent);
  ASSIGN_OR_RETURN(CreatedToken created, Store(request.id, std::move(e)));
  created.warnings = std::move(warnings_only.warnings);
  return created;
}

absl::StatusOr<TokenEntry> TokenStore::Lookup(absl::string_view token) {
  if (token.empty()) return PermissionDenied();
  const std::string hash = TokenHash(token);
  ASSIGN_OR_RETURN(std::optional<TokenEntry> entry, Read(hash));
  if (!entry.has_value()) return PermissionDenied();
  if (entry->expire_time.has_value() && clock_.WallNow() >= *entry->expire_time) {
    // Expired: tidy it away now (children expire no later, so they go too). A failure here
    // changes nothing for the caller, who is refused either way; the next lookup tries again.
    (void)RevokeHash(hash);
    return PermissionDenied();
  }
  return *std::move(entry);
}

absl::Status TokenStore::Revoke(absl::string_view token) {
  if (token.empty()) return absl::OkStatus();
  return RevokeHash(TokenHash(token));
}

absl::Status TokenStore::RevokeHash(const std::string& hash) {
  ASSIGN_OR_RETURN(std::optional<TokenEntry> root, Read(hash));
  if (!root.has_value()) return absl::OkStatus();
  // Breadth-first, so every token comes before its descendants; deleting in reverse order
  // removes children before their parents.
  std::vector<std::string> order = {hash};
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string prefix = ChildrenPrefix(order[i]);
    ASSIGN_OR_RETURN(std::vector<std::string> children, storage_.List(prefix));
    for (const std::string& key : children) {
      order.push_back(key.substr(prefix.size()));
      if (order.size() > kRevokeTreeTokensMax) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "the token has more than ", kRevokeTreeTokensMax, " descendants to revoke"));
      }
    }
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    RETURN_IF_ERROR(storage_.Delete(IdKey(*it)));
    const std::string prefix = ChildrenPrefix(*it);
    ASSIGN_OR_RETURN(std::vector<std::string> children, storage_.List(prefix));
    for (const std::string& key : children) RETURN_IF_ERROR(storage_.Delete(key));
  }
  if (!root->parent_hash.empty()) {
    RETURN_IF_ERROR(storage_.Delete(absl::StrCat(ChildrenPrefix(root->parent_hash), hash)));
  }
  return absl::OkStatus();
}

}  // namespace bulwark::token
