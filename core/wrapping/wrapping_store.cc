// Wrapped responses behind the barrier: the signing key, records keyed by hashed token ids,
// single use and expiry.
#include "core/wrapping/wrapping_store.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/crypto/es512.h"
#include "base/crypto/sha256.h"
#include "base/crypto/uuid.h"
#include "base/json/json_depth.h"
#include "base/status/status_macros.h"
#include "protocol/wrapping_token.h"

namespace bulwark::wrapping {
namespace {

using Json = nlohmann::json;

constexpr int kRecordVersion = 1;
constexpr absl::string_view kCurve = "P-521";
constexpr size_t kTokenIdChars = 24;
constexpr absl::string_view kTokenIdPrefix = "hvs.";
constexpr size_t kDataJsonDepthMax = 32;
constexpr absl::string_view kBase62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

absl::Status Refused(absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(kInvalidWrappingToken, ": ", reason));
}

std::string RecordKey(absl::string_view token_id) {
  return absl::StrCat(kResponsePrefix, crypto::HexEncode(crypto::Sha256::Hash(token_id)));
}

std::string RandomBytes(Random& random, size_t n) {
  std::string out(n, '\0');
  random.Fill(absl::MakeSpan(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  return out;
}

void Wipe(std::string& s) {
  volatile char* p = s.data();
  for (size_t i = 0; i < s.size(); ++i) p[i] = 0;
}

struct Record {
  absl::Time creation_time;
  absl::Time expire_time;
  std::string creation_path;
  std::string response;
};

absl::StatusOr<Record> DecodeRecord(absl::string_view text) {
  const Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  auto int_field = [&](const char* k) -> std::optional<int64_t> {
    auto it = j.is_object() ? j.find(k) : j.end();
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  auto str_field = [&](const char* k) -> std::optional<std::string> {
    auto it = j.is_object() ? j.find(k) : j.end();
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  std::optional<int64_t> v = int_field("v"), created = int_field("creation_time"),
                         expires = int_field("expire_time");
  std::optional<std::string> path = str_field("creation_path"), response = str_field("response");
  if (!v.has_value() || *v != kRecordVersion || !created || !expires || !path || !response) {
    return absl::DataLossError("a wrapped response record is corrupt; it cannot be unwrapped");
  }
  return Record{absl::FromUnixSeconds(*created), absl::FromUnixSeconds(*expires), *path, *response};
}

}  // namespace

struct WrappingStore::Key {
  crypto::P521SigningKey signing;
};

bool IsInvalidWrappingToken(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(status.message(), kInvalidWrappingToken);
}

WrappingStore::WrappingStore(Storage& storage, Clock& clock, Random& random, Executor& executor)
    : storage_(storage), clock_(clock), random_(random), executor_(executor) {}

WrappingStore::~WrappingStore() {
  *alive_ = false;
  for (const auto& [key, timer] : timers_) executor_.Cancel(timer);
}

absl::StatusOr<std::unique_ptr<WrappingStore::Key>> WrappingStore::LoadOrCreateKey(bool create) {
  ASSIGN_OR_RETURN(std::optional<std::string> raw, storage_.Get(kJwtKeyPath));
  if (!raw.has_value()) {
    if (!create) return absl::NotFoundError("no wrapping key yet");
    std::string seed = RandomBytes(random_, crypto::kP521SeedBytes);
    absl::StatusOr<crypto::P521SigningKey> made = crypto::P521SigningKey::FromSeed(seed);
    Wipe(seed);
    if (!made.ok()) return made.status();
    std::string d = absl::Base64Escape(made->scalar().view());
    std::string record = Json{{"v", kRecordVersion}, {"curve", kCurve}, {"d", d}}.dump();
    absl::Status put = storage_.Put(kJwtKeyPath, record);
    Wipe(d);
    Wipe(record);
    RETURN_IF_ERROR(put);
    return std::make_unique<Key>(Key{*std::move(made)});
  }
  const Json j = Json::parse(raw->begin(), raw->end(), nullptr, false);
  Wipe(*raw);
  auto d = j.is_object() ? j.find("d") : j.end();
  auto v = j.is_object() ? j.find("v") : j.end();
  std::string scalar;
  if (d == j.end() || !d->is_string() || v == j.end() || *v != kRecordVersion ||
      !absl::Base64Unescape(d->get_ref<const std::string&>(), &scalar)) {
    return absl::DataLossError(
        absl::StrCat("the response-wrapping key at ", kJwtKeyPath, " is corrupt"));
  }
  absl::StatusOr<crypto::P521SigningKey> key = crypto::P521SigningKey::FromScalar(scalar);
  Wipe(scalar);
  if (!key.ok()) {
    return absl::DataLossError(
        absl::StrCat("the response-wrapping key at ", kJwtKeyPath, " is not a P-521 key"));
  }
  return std::make_unique<Key>(Key{*std::move(key)});
}

std::string WrappingStore::NewTokenId() {
  std::string out(kTokenIdPrefix);
  for (size_t i = 0; i < kTokenIdChars; ++i)
    out.push_back(kBase62[random_.Uniform(kBase62.size())]);
  return out;
}

std::string WrappingStore::NewUuid() { return crypto::RandomUuid(random_); }

absl::Status WrappingStore::MakeRoom() {
  ASSIGN_OR_RETURN(std::vector<std::string> keys, storage_.List(kResponsePrefix));
  if (keys.size() < kWrappedResponsesMax) return absl::OkStatus();
  ASSIGN_OR_RETURN(size_t swept, SweepExpired());
  if (keys.size() - swept < kWrappedResponsesMax) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(kWrappedResponsesMax,
                   " wrapped responses are waiting to be unwrapped; wait for them to be "
                   "unwrapped or to expire"));
}

absl::StatusOr<WrapResult> WrappingStore::Wrap(WrapRequest request) {
  if (request.ttl < kWrapTtlMin || request.ttl > kWrapTtlMax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "wrap: the TTL must be between ", absl::FormatDuration(kWrapTtlMin), " and ",
        absl::FormatDuration(kWrapTtlMax), ", got ", absl::FormatDuration(request.ttl)));
  }
  if (request.data_json.size() > kWrappedResponseBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrap: the data is larger than ", kWrappedResponseBytesMax, " bytes"));
  }
  const absl::string_view data_text = request.data_json.view();
  if (FindJsonNestingBeyond(data_text, kDataJsonDepthMax).has_value()) {
    return absl::InvalidArgumentError("wrap: the data is nested too deeply");
  }
  Json data = Json::parse(data_text.begin(), data_text.end(), nullptr, false);
  if (!data.is_object()) return absl::InvalidArgumentError("wrap: the data is not a JSON object");
  RETURN_IF_ERROR(MakeRoom());
  ASSIGN_OR_RETURN(std::unique_ptr<Key> key, LoadOrCreateKey(/*create=*/true));

  WrapResult result;
  // Whole seconds: the JWT carries Unix seconds and the record must agree with it.
  result.creation_time = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.WallNow()));
  result.expire_time = result.creation_time + request.ttl;
  std::string id = NewTokenId();
  // Vault's envelope of the original response (logical.LogicalResponseToHTTPResponse).
  Json envelope = {{"request_id", NewUuid()}, {"lease_id", ""},          {"renewable", false},
                   {"lease_duration", 0},     {"data", std::move(data)}, {"wrap_info", nullptr},
                   {"warnings", nullptr},     {"auth", nullptr}};
  std::string response = envelope.dump(-1, ' ', false, Json::error_handler_t::replace);
  envelope.clear();
  std::string record = Json{
      {"v", kRecordVersion},
      {"creation_time", absl::ToUnixSeconds(result.creation_time)},
      {"expire_time", absl::ToUnixSeconds(result.expire_time)},
      {"creation_path", request.creation_path},
      {"response",
       response}}.dump(-1, ' ', false, Json::error_handler_t::replace);
  Wipe(response);
  const std::string record_key = RecordKey(id);
  absl::Status put = storage_.Put(record_key, record);
  Wipe(record);
  RETURN_IF_ERROR(put);

  protocol::WrappingClaims claims;
  claims.id = id;
  claims.issued_at = result.creation_time;
  claims.expires_at = result.expire_time;
  claims.not_before = result.creation_time - protocol::kWrappingNotBeforeSkew;
  claims.addr = request.addr;
  std::string nonce = RandomBytes(random_, crypto::kP521SeedBytes);
  absl::StatusOr<std::string> token = protocol::EncodeWrappingJwt(claims, key->signing, nonce);
  Wipe(nonce);
  Wipe(id);
  if (!token.ok()) {
    (void)storage_.Delete(record_key);  // Nobody can ever unwrap it.
    return token.status();
  }
  result.token = *std::move(token);
  ScheduleExpiry(record_key, request.ttl);
  return result;
}

void WrappingStore::ScheduleExpiry(const std::string& record_key, absl::Duration ttl) {
  std::weak_ptr<bool> alive = alive_;
  // A second past the expiry: the record's times are whole seconds.
  const TimerId timer = executor_.PostAfter(ttl + absl::Seconds(1), [this, alive, record_key] {
    if (alive.expired()) return;
    timers_.erase(record_key);
    absl::StatusOr<std::optional<std::string>> raw = storage_.Get(record_key);
    if (!raw.ok() || !raw->has_value()) return;  // Unwrapped, or sealed: the sweep will do it.
    absl::StatusOr<Record> record = DecodeRecord(**raw);
    Wipe(**raw);
    if (!record.ok() || clock_.WallNow() >= record->expire_time) {
      (void)storage_.Delete(record_key);
    } else {
      // The wall clock was stepped back: look again when the record really expires.
      ScheduleExpiry(record_key, record->expire_time - clock_.WallNow());
    }
  });
  timers_[record_key] = timer;
}

absl::StatusOr<std::string> WrappingStore::Unwrap(absl::string_view token) {
  if (!protocol::LooksLikeJwt(token)) return Refused("not a JWT-formatted wrapping token");
  absl::StatusOr<std::unique_ptr<Key>> key = LoadOrCreateKey(/*create=*/false);
  if (absl::IsNotFound(key.status())) return Refused("no token was ever issued");
  if (!key.ok()) return key.status();
  const absl::Time now = clock_.WallNow();
  absl::StatusOr<protocol::WrappingClaims> claims =
      protocol::VerifyWrappingJwt(token, (*key)->signing.public_key(), now);
  if (!claims.ok()) {
    absl::string_view reason = claims.status().message();
    absl::ConsumePrefix(&reason, "wrapping token: ");
    return Refused(reason);
  }
  const std::string record_key = RecordKey(claims->id);
  Wipe(claims->id);
  ASSIGN_OR_RETURN(std::optional<std::string> raw, storage_.Get(record_key));
  if (!raw.has_value()) return Refused("already unwrapped, expired, or never stored");
  // Single use: gone from storage before anyone sees it.
  RETURN_IF_ERROR(storage_.Delete(record_key));
  if (auto it = timers_.find(record_key); it != timers_.end()) {
    executor_.Cancel(it->second);
    timers_.erase(it);
  }
  absl::StatusOr<Record> record = DecodeRecord(*raw);
  Wipe(*raw);
  if (!record.ok()) return record.status();
  if (now >= record->expire_time) {
    Wipe(record->response);
    return Refused("expired");
  }
  return std::move(record->response);
}

absl::StatusOr<size_t> WrappingStore::SweepExpired() {
  ASSIGN_OR_RETURN(std::vector<std::string> keys, storage_.List(kResponsePrefix));
  const absl::Time now = clock_.WallNow();
  size_t swept = 0;
  for (const std::string& key : keys) {
    ASSIGN_OR_RETURN(std::optional<std::string> raw, storage_.Get(key));
    if (!raw.has_value()) continue;
    absl::StatusOr<Record> record = DecodeRecord(*raw);
    Wipe(*raw);
    // A corrupt record can never be unwrapped either: it goes too.
    if (record.ok() && now < record->expire_time) continue;
    RETURN_IF_ERROR(storage_.Delete(key));
    if (auto it = timers_.find(key); it != timers_.end()) {
      executor_.Cancel(it->second);
      timers_.erase(it);
    }
    ++swept;
  }
  return swept;
}

}  // namespace bulwark::wrapping
