// JSON encoding of catalog records (see codec.h). A small strict reader is enough for these flat
// records; it never recurses deeper than kJsonDepthMax and never echoes string contents (an env
// value may be a secret) in its errors.
#include "core/catalog/codec.h"

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/crypto/sha256.h"
#include "base/crypto/sshsig.h"
#include "base/status/status_macros.h"
#include "core/catalog/catalog_error.h"
#include "core/catalog/validation.h"

namespace bulwark::catalog {
namespace {

absl::Status Corrupt(absl::string_view what) {
  return CatalogStatus(absl::StatusCode::kDataLoss, CatalogError::kStorageCorrupt,
                       absl::StrCat("stored catalog record: ", what,
                                    "; restore the record from a backup or delete and "
                                    "re-register the plugin"));
}

// Corrupt(), keeping only the reason-free part of a validation error's message.
absl::Status CorruptField(absl::string_view field, const absl::Status& status) {
  absl::string_view message = status.message();
  if (size_t colon = message.find(": ");
      colon != absl::string_view::npos &&
      message.substr(0, colon).find(' ') == absl::string_view::npos) {
    message.remove_prefix(colon + 2);
  }
  return Corrupt(absl::StrCat("field \"", field, "\" is invalid (", message, ")"));
}

void AppendJsonString(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (u < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 0xf]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void AppendJsonStringArray(std::string* out, const std::vector<std::string>& items) {
  out->push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(out, items[i]);
  }
  out->push_back(']');
}

void AppendCodepointUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// A strict reader over one JSON text. Errors give the byte offset, never the content.
class JsonReader {
 public:
  explicit JsonReader(absl::string_view in) : in_(in) {}

  absl::Status Error(absl::string_view what) const {
    return Corrupt(absl::StrCat("malformed JSON at byte ", pos_, ": ", what));
  }

  void SkipSpace() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) {
      ++pos_;
    }
  }

  // Consumes `c` (after whitespace) if it is next.
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  absl::Status Expect(char c) {
    if (!Consume(c)) return Error(absl::StrCat("expected '", std::string(1, c), "'"));
    return absl::OkStatus();
  }

  bool AtEnd() {
    SkipSpace();
    return pos_ == in_.size();
  }

  char Peek() {
    SkipSpace();
    return pos_ < in_.size() ? in_[pos_] : '\0';
  }

  bool ConsumeLiteral(absl::string_view literal) {
    SkipSpace();
    if (in_.substr(pos_, literal.size()) == literal) {
      pos_ += literal.size();
      return true;
    }
    return false;
  }

  absl::StatusOr<std::string> ReadString() {
    RETURN_IF_ERROR(Expect('"'));
    std::string out;
    while (true) {
      if (pos_ >= in_.size()) return Error("unterminated string");
      const char c = in_[pos_++];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= in_.size()) return Error("unterminated escape");
      const char e = in_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          ASSIGN_OR_RETURN(uint32_t cp, ReadHex4());
          if (cp >= 0xdc00 && cp <= 0xdfff) return Error("unpaired low surrogate");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (in_.substr(pos_, 2) != "\\u") return Error("unpaired high surrogate");
            pos_ += 2;
            ASSIGN_OR_RETURN(uint32_t low, ReadHex4());
            if (low < 0xdc00 || low > 0xdfff) return Error("unpaired high surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          AppendCodepointUtf8(&out, cp);
          break;
        }
        default:
          return Error("unknown escape");
      }
    }
    if (!IsValidUtf8(out)) return Error("string is not valid UTF-8");
    return out;
  }

  // A list of strings, or null (an empty list, as Go writes a nil slice).
  absl::StatusOr<std::vector<std::string>> ReadStringArray(size_t items_max) {
    std::vector<std::string> out;
    if (ConsumeLiteral("null")) return out;
    RETURN_IF_ERROR(Expect('['));
    if (Consume(']')) return out;
    while (true) {
      if (out.size() >= items_max) return Error("too many list items");
      ASSIGN_OR_RETURN(std::string item, ReadString());
      out.push_back(std::move(item));
      if (Consume(']')) return out;
      RETURN_IF_ERROR(Expect(','));
    }
  }

  absl::StatusOr<bool> ReadBool() {
    if (ConsumeLiteral("true")) return true;
    if (ConsumeLiteral("false")) return false;
    return Error("expected true or false");
  }

  // A non-negative integer of at most 9 digits.
  absl::StatusOr<uint32_t> ReadSmallInteger() {
    SkipSpace();
    uint32_t value = 0;
    size_t digits = 0;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') {
      if (++digits > 9) return Error("number too large");
      value = value * 10 + static_cast<uint32_t>(in_[pos_++] - '0');
    }
    if (digits == 0) return Error("expected a number");
    if (pos_ < in_.size() && (in_[pos_] == '.' || in_[pos_] == 'e' || in_[pos_] == 'E')) {
      return Error("expected an integer");
    }
    return value;
  }

  // A non-negative integer of at most 19 digits (fits uint64).
  absl::StatusOr<uint64_t> ReadUint64() {
    SkipSpace();
    uint64_t value = 0;
    size_t digits = 0;
    while (pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9') {
      if (++digits > 19) return Error("number too large");
      value = value * 10 + static_cast<uint64_t>(in_[pos_++] - '0');
    }
    if (digits == 0) return Error("expected a number");
    if (pos_ < in_.size() && (in_[pos_] == '.' || in_[pos_] == 'e' || in_[pos_] == 'E')) {
      return Error("expected an integer");
    }
    return value;
  }

  // Skips any JSON value (for fields this version does not know).
  absl::Status SkipValue(int depth) {
    if (depth > kJsonDepthMax) return Error("nested too deeply");
    const char c = Peek();
    if (c == '"') return ReadString().status();
    if (c == '{') {
      ++pos_;
      if (Consume('}')) return absl::OkStatus();
      while (true) {
        RETURN_IF_ERROR(ReadString().status());
        RETURN_IF_ERROR(Expect(':'));
        RETURN_IF_ERROR(SkipValue(depth + 1));
        if (Consume('}')) return absl::OkStatus();
        RETURN_IF_ERROR(Expect(','));
      }
    }
    if (c == '[') {
      ++pos_;
      if (Consume(']')) return absl::OkStatus();
      while (true) {
        RETURN_IF_ERROR(SkipValue(depth + 1));
        if (Consume(']')) return absl::OkStatus();
        RETURN_IF_ERROR(Expect(','));
      }
    }
    if (ConsumeLiteral("true") || ConsumeLiteral("false") || ConsumeLiteral("null")) {
      return absl::OkStatus();
    }
    // A number: -?digits[.digits][(e|E)[+-]digits], checked loosely but bounded.
    const size_t start = pos_;
    if (pos_ < in_.size() && in_[pos_] == '-') ++pos_;
    while (pos_ < in_.size() &&
           ((in_[pos_] >= '0' && in_[pos_] <= '9') || in_[pos_] == '.' || in_[pos_] == 'e' ||
            in_[pos_] == 'E' || in_[pos_] == '+' || in_[pos_] == '-')) {
      ++pos_;
    }
    if (pos_ == start || (pos_ == start + 1 && in_[start] == '-')) return Error("expected a value");
    return absl::OkStatus();
  }

  // Calls `field(key)` for each member of an object; `field` reads the value.
  template <typename F>
  absl::Status ReadObject(F field) {
    RETURN_IF_ERROR(Expect('{'));
    if (Consume('}')) return absl::OkStatus();
    while (true) {
      ASSIGN_OR_RETURN(std::string key, ReadString());
      RETURN_IF_ERROR(Expect(':'));
      RETURN_IF_ERROR(field(key));
      if (Consume('}')) return absl::OkStatus();
      RETURN_IF_ERROR(Expect(','));
    }
  }

 private:
  absl::StatusOr<uint32_t> ReadHex4() {
    if (pos_ + 4 > in_.size()) return Error("short \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = in_[pos_++];
      uint32_t digit;
      if (h >= '0' && h <= '9') {
        digit = static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        digit = static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        digit = static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return Error("bad \\u escape");
      }
      value = value << 4 | digit;
    }
    return value;
  }

  absl::string_view in_;
  size_t pos_ = 0;
};

// "type" as Vault may write it: a name, or consts.PluginType's number.
absl::StatusOr<PluginType> ReadType(JsonReader& reader) {
  if (reader.Peek() == '"') {
    ASSIGN_OR_RETURN(std::string name, reader.ReadString());
    absl::StatusOr<PluginType> type = ParsePluginType(name);
    if (!type.ok()) return CorruptField("type", type.status());
    return *type;
  }
  ASSIGN_OR_RETURN(uint32_t number, reader.ReadSmallInteger());
  for (PluginType type : kAllPluginTypes) {
    if (static_cast<uint32_t>(type) == number) return type;
  }
  return Corrupt(absl::StrCat("field \"type\" is the unknown plugin type number ", number));
}

// Reads a string field that this implementation only accepts empty (or null).
absl::Status ReadMustBeEmpty(JsonReader& reader, absl::string_view field) {
  if (reader.ConsumeLiteral("null")) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string value, reader.ReadString());
  if (!value.empty()) {
    return Corrupt(absl::StrCat("field \"", field,
                                "\" is set, but OCI (container) plugins are not supported"));
  }
  return absl::OkStatus();
}

// Checks that `seen` holds the field, for the required ones.
absl::Status Require(bool seen, absl::string_view field) {
  if (!seen) return Corrupt(absl::StrCat("field \"", field, "\" is missing"));
  return absl::OkStatus();
}

absl::Status ValidateStoredVersion(absl::string_view version, bool allow_empty) {
  if (version.empty()) {
    if (allow_empty) return absl::OkStatus();
    return Corrupt("field \"version\" is empty");
  }
  absl::StatusOr<std::string> normalized = NormalizeVersion(version);
  if (!normalized.ok()) return CorruptField("version", normalized.status());
  if (*normalized != version) return Corrupt("field \"version\" is not in canonical form");
  return absl::OkStatus();
}

// Records from before signatures have none of the three fields. A signature may be kept alone
// (registered under the "off" policy, unverified); a signer needs both of its fields and a
// signature they agree with.
absl::Status ValidateStoredSignature(const CatalogEntry& entry) {
  if (entry.signature.empty() && entry.signer_principal.empty() &&
      entry.signer_fingerprint.empty()) {
    return absl::OkStatus();
  }
  if (entry.signature.empty() ||
      entry.signer_principal.empty() != entry.signer_fingerprint.empty()) {
    return Corrupt(
        "fields \"signer_principal\" and \"signer_fingerprint\" must come together, with a "
        "\"signature\"");
  }
  if (entry.signature.size() > kSignatureBytesMax ||
      entry.signer_principal.size() > kSignerPrincipalBytesMax) {
    return Corrupt("field \"signature\" or \"signer_principal\" is too long");
  }
  absl::StatusOr<crypto::SshSignature> sig = crypto::ParseArmoredSshSignature(entry.signature);
  if (!sig.ok()) return CorruptField("signature", sig.status());
  if (!entry.signer_fingerprint.empty() &&
      crypto::SshKeyFingerprint(sig->public_key) != entry.signer_fingerprint) {
    return Corrupt("field \"signer_fingerprint\" is not the fingerprint of the signature's key");
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeEntry(const CatalogEntry& entry) {
  std::string out = "{\"name\":";
  AppendJsonString(&out, entry.name);
  absl::StrAppend(&out, ",\"type\":");
  AppendJsonString(&out, PluginTypeName(entry.type));
  absl::StrAppend(&out, ",\"version\":");
  AppendJsonString(&out, entry.version);
  absl::StrAppend(&out, ",\"command\":");
  AppendJsonString(&out, entry.command);
  absl::StrAppend(&out, ",\"args\":");
  AppendJsonStringArray(&out, entry.args);
  absl::StrAppend(&out, ",\"env\":");
  AppendJsonStringArray(&out, entry.env);
  absl::StatusOr<std::string> raw = crypto::HexDecode(entry.sha256_hex);
  absl::StrAppend(&out, ",\"sha256\":");
  AppendJsonString(&out, absl::Base64Escape(raw.ok() ? *raw : std::string()));
  absl::StrAppend(&out, ",\"builtin\":", entry.builtin ? "true" : "false");
  // Limits (issue 17): written only when set, so entries without limits encode as before and
  // older readers skip the field.
  if (!entry.limits.empty()) {
    absl::StrAppend(&out, ",\"limits\":{");
    bool first = true;
    auto field = [&](absl::string_view name, const std::optional<uint64_t>& v) {
      if (!v.has_value()) return;
      absl::StrAppend(&out, first ? "" : ",", "\"", name, "\":", *v);
      first = false;
    };
    field("memory_bytes", entry.limits.memory_bytes);
    field("pids", entry.limits.pids);
    field("cpu_weight", entry.limits.cpu_weight);
    field("open_files", entry.limits.open_files);
    out.push_back('}');
  }
  // Written only for a signed entry, so unsigned records stay byte-for-byte what they were.
  if (!entry.signature.empty()) {
    absl::StrAppend(&out, ",\"signature\":");
    AppendJsonString(&out, entry.signature);
    if (!entry.signer_fingerprint.empty()) {
      absl::StrAppend(&out, ",\"signer_principal\":");
      AppendJsonString(&out, entry.signer_principal);
      absl::StrAppend(&out, ",\"signer_fingerprint\":");
      AppendJsonString(&out, entry.signer_fingerprint);
    }
  }
  absl::StrAppend(&out, "}");
  return out;
}

absl::StatusOr<CatalogEntry> DecodeEntry(absl::string_view json) {
  JsonReader reader(json);
  CatalogEntry entry;
  bool seen_name = false, seen_type = false, seen_command = false, seen_sha = false;
  std::string sha_b64;
  RETURN_IF_ERROR(reader.ReadObject([&](const std::string& key) -> absl::Status {
    if (key == "name") {
      ASSIGN_OR_RETURN(entry.name, reader.ReadString());
      seen_name = true;
    } else if (key == "type") {
      ASSIGN_OR_RETURN(entry.type, ReadType(reader));
      seen_type = true;
    } else if (key == "version") {
      ASSIGN_OR_RETURN(entry.version, reader.ReadString());
    } else if (key == "command") {
      ASSIGN_OR_RETURN(entry.command, reader.ReadString());
      seen_command = true;
    } else if (key == "args") {
      ASSIGN_OR_RETURN(entry.args, reader.ReadStringArray(kArgsMax));
    } else if (key == "env") {
      ASSIGN_OR_RETURN(entry.env, reader.ReadStringArray(kEnvMax));
    } else if (key == "sha256") {
      ASSIGN_OR_RETURN(sha_b64, reader.ReadString());
      seen_sha = true;
    } else if (key == "builtin") {
      ASSIGN_OR_RETURN(entry.builtin, reader.ReadBool());
    } else if (key == "signature") {
      ASSIGN_OR_RETURN(entry.signature, reader.ReadString());
    } else if (key == "signer_principal") {
      ASSIGN_OR_RETURN(entry.signer_principal, reader.ReadString());
    } else if (key == "signer_fingerprint") {
      ASSIGN_OR_RETURN(entry.signer_fingerprint, reader.ReadString());
    } else if (key == "oci_image" || key == "runtime") {
      RETURN_IF_ERROR(ReadMustBeEmpty(reader, key));
    } else if (key == "limits") {
      RETURN_IF_ERROR(reader.ReadObject([&](const std::string& limit) -> absl::Status {
        std::optional<uint64_t>* slot = limit == "memory_bytes" ? &entry.limits.memory_bytes
                                        : limit == "pids"       ? &entry.limits.pids
                                        : limit == "cpu_weight" ? &entry.limits.cpu_weight
                                        : limit == "open_files" ? &entry.limits.open_files
                                                                : nullptr;
        if (slot == nullptr) return reader.SkipValue(2);
        ASSIGN_OR_RETURN(*slot, reader.ReadUint64());
        return absl::OkStatus();
      }));
    } else {
      RETURN_IF_ERROR(reader.SkipValue(1));
    }
    return absl::OkStatus();
  }));
  if (!reader.AtEnd()) return reader.Error("data after the record");
  if (absl::Status s = ValidateLimits(entry.limits); !s.ok()) return CorruptField("limits", s);
  RETURN_IF_ERROR(Require(seen_name, "name"));
  RETURN_IF_ERROR(Require(seen_type, "type"));
  RETURN_IF_ERROR(Require(seen_command, "command"));
  RETURN_IF_ERROR(Require(seen_sha, "sha256"));
  if (entry.builtin) return Corrupt("a stored record claims to be a built-in plugin");
  if (absl::Status s = ValidateName(entry.name); !s.ok()) return CorruptField("name", s);
  RETURN_IF_ERROR(ValidateStoredVersion(entry.version, /*allow_empty=*/true));
  if (IsBuiltinVersion(entry.version)) return Corrupt("field \"version\" has builtin metadata");
  if (absl::Status s = ValidateCommand(entry.command); !s.ok()) return CorruptField("command", s);
  if (absl::Status s = ValidateArgs(entry.args); !s.ok()) return CorruptField("args", s);
  if (absl::Status s = ValidateEnv(entry.env); !s.ok()) return CorruptField("env", s);
  std::string raw;
  if (!absl::Base64Unescape(sha_b64, &raw) || raw.size() != crypto::kSha256DigestBytes) {
    return Corrupt("field \"sha256\" is not the base64 of a 32-byte digest");
  }
  entry.sha256_hex = crypto::HexEncode(raw);
  RETURN_IF_ERROR(ValidateStoredSignature(entry));
  return entry;
}

std::string EncodePin(const PinRecord& pin) {
  std::string out = "{\"name\":";
  AppendJsonString(&out, pin.name);
  absl::StrAppend(&out, ",\"type\":");
  AppendJsonString(&out, PluginTypeName(pin.type));
  absl::StrAppend(&out, ",\"version\":");
  AppendJsonString(&out, pin.version);
  out.push_back('}');
  return out;
}

absl::StatusOr<PinRecord> DecodePin(absl::string_view json) {
  JsonReader reader(json);
  PinRecord pin;
  bool seen_name = false, seen_type = false, seen_version = false;
  RETURN_IF_ERROR(reader.ReadObject([&](const std::string& key) -> absl::Status {
    if (key == "name") {
      ASSIGN_OR_RETURN(pin.name, reader.ReadString());
      seen_name = true;
    } else if (key == "type") {
      ASSIGN_OR_RETURN(pin.type, ReadType(reader));
      seen_type = true;
    } else if (key == "version") {
      ASSIGN_OR_RETURN(pin.version, reader.ReadString());
      seen_version = true;
    } else {
      RETURN_IF_ERROR(reader.SkipValue(1));
    }
    return absl::OkStatus();
  }));
  if (!reader.AtEnd()) return reader.Error("data after the record");
  RETURN_IF_ERROR(Require(seen_name, "name"));
  RETURN_IF_ERROR(Require(seen_type, "type"));
  RETURN_IF_ERROR(Require(seen_version, "version"));
  if (absl::Status s = ValidateName(pin.name); !s.ok()) return CorruptField("name", s);
  RETURN_IF_ERROR(ValidateStoredVersion(pin.version, /*allow_empty=*/false));
  return pin;
}

}  // namespace bulwark::catalog
