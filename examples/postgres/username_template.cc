// A recursive-descent parser and evaluator for the username-template subset (see the header).
#include "examples/postgres/username_template.h"

#include <functional>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "base/crypto/sha256.h"
#include "examples/postgres/postgres.h"

namespace bulwark::examples::postgres {

struct UsernameTemplate::Node {
  enum class Kind { kText, kField, kString, kNumber, kCall, kPipeline };
  Kind kind = Kind::kText;
  std::string text;  // kText, kString, kNumber: the value; kField: the name; kCall: the function.
  std::vector<std::shared_ptr<const Node>> children;  // kCall: arguments; kPipeline: commands.
};

namespace {

using Node = UsernameTemplate::Node;
using NodePtr = std::shared_ptr<const Node>;
using crypto::HexEncode;
using crypto::Sha256;

constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// Function name -> (fewest, most) arguments, a piped value included.
const std::map<std::string, std::pair<size_t, size_t>>& Functions() {
  static const auto* functions = new std::map<std::string, std::pair<size_t, size_t>>{
      {"random", {1, 1}},           {"truncate", {2, 2}},  {"truncate_sha256", {2, 2}},
      {"uppercase", {1, 1}},        {"lowercase", {1, 1}}, {"replace", {3, 3}},
      {"sha256", {1, 1}},           {"base64", {1, 1}},    {"unix_time", {0, 0}},
      {"unix_time_millis", {0, 0}}, {"uuid", {0, 0}},      {"printf", {1, 64}},
  };
  return *functions;
}

absl::Status Invalid(absl::string_view problem, size_t pos) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid username template: ", problem, " at byte ", pos));
}

class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  absl::StatusOr<std::vector<NodePtr>> Parts() {
    std::vector<NodePtr> parts;
    while (pos_ < text_.size()) {
      const size_t open = text_.find("{{", pos_);
      const size_t end = open == absl::string_view::npos ? text_.size() : open;
      if (end > pos_) parts.push_back(Leaf(Node::Kind::kText, text_.substr(pos_, end - pos_)));
      if (open == absl::string_view::npos) break;
      pos_ = open + 2;
      absl::StatusOr<NodePtr> pipeline = Pipeline(0);
      if (!pipeline.ok()) return pipeline.status();
      SkipSpaces();
      if (text_.substr(pos_, 2) != "}}") return Invalid("expected }}", pos_);
      pos_ += 2;
      parts.push_back(*pipeline);
    }
    return parts;
  }

 private:
  static NodePtr Leaf(Node::Kind kind, absl::string_view text) {
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->text = std::string(text);
    return node;
  }

  void SkipSpaces() {
    while (pos_ < text_.size() && absl::ascii_isspace(text_[pos_])) ++pos_;
  }

  bool AtCommandEnd() {
    SkipSpaces();
    return pos_ >= text_.size() || text_[pos_] == '|' || text_[pos_] == ')' ||
           text_.substr(pos_, 2) == "}}";
  }

  absl::StatusOr<NodePtr> Pipeline(int depth) {
    if (depth > kUsernameTemplateDepthMax) return Invalid("nested too deeply", pos_);
    auto pipeline = std::make_shared<Node>();
    pipeline->kind = Node::Kind::kPipeline;
    for (;;) {
      absl::StatusOr<NodePtr> command = Command(depth, !pipeline->children.empty());
      if (!command.ok()) return command.status();
      pipeline->children.push_back(*command);
      SkipSpaces();
      if (pos_ >= text_.size() || text_[pos_] != '|') return pipeline;
      ++pos_;
    }
  }

  absl::StatusOr<NodePtr> Command(int depth, bool piped) {
    std::vector<NodePtr> terms;
    const size_t start = pos_;
    while (!AtCommandEnd()) {
      absl::StatusOr<NodePtr> term = Term(depth);
      if (!term.ok()) return term.status();
      terms.push_back(*term);
    }
    if (terms.empty()) return Invalid("missing value", start);
    if (terms[0]->kind != Node::Kind::kCall) {
      if (terms.size() > 1 || piped) return Invalid("a value cannot take arguments", start);
      return terms[0];
    }
    auto call = std::make_shared<Node>(*terms[0]);
    call->children.assign(terms.begin() + 1, terms.end());
    const auto& [fewest, most] = Functions().at(call->text);
    const size_t given = call->children.size() + (piped ? 1 : 0);
    if (given < fewest || given > most) {
      return Invalid(absl::StrCat(call->text, " takes ", fewest == most ? "" : "from ", fewest,
                                  fewest == most ? "" : absl::StrCat(" to ", most),
                                  " argument(s), got ", given),
                     start);
    }
    return NodePtr(call);
  }

  absl::StatusOr<NodePtr> Term(int depth) {
    const size_t start = pos_;
    const char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      absl::StatusOr<NodePtr> inner = Pipeline(depth + 1);
      if (!inner.ok()) return inner.status();
      SkipSpaces();
      if (pos_ >= text_.size() || text_[pos_] != ')') return Invalid("expected )", pos_);
      ++pos_;
      return inner;
    }
    if (c == '"') {
      std::string value;
      for (++pos_; pos_ < text_.size() && text_[pos_] != '"'; ++pos_) {
        if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
        value += text_[pos_];
      }
      if (pos_ >= text_.size()) return Invalid("unterminated string", start);
      ++pos_;
      return Leaf(Node::Kind::kString, value);
    }
    size_t end = pos_ + 1;
    while (end < text_.size() && (absl::ascii_isalnum(text_[end]) || text_[end] == '_')) ++end;
    const absl::string_view word = text_.substr(pos_, end - pos_);
    pos_ = end;
    if (absl::ascii_isdigit(c)) {
      int64_t n;
      if (!absl::SimpleAtoi(word, &n)) return Invalid("bad number", start);
      return Leaf(Node::Kind::kNumber, word);
    }
    if (word == ".DisplayName" || word == ".RoleName") return Leaf(Node::Kind::kField, word);
    if (Functions().count(std::string(word)) != 0) return Leaf(Node::Kind::kCall, word);
    return Invalid(absl::StrCat("unknown name \"", word.substr(0, 32),
                                "\" (known: .DisplayName, "
                                ".RoleName, random, truncate, truncate_sha256, uppercase, "
                                "lowercase, replace, sha256, base64, unix_time, "
                                "unix_time_millis, uuid, printf)"),
                   start);
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

struct Context {
  const sdk::UsernameMetadata& metadata;
  Random& random;
  absl::Time now;
};

absl::StatusOr<int64_t> Length(const std::string& text, absl::string_view function) {
  int64_t n;
  if (!absl::SimpleAtoi(text, &n) || n < 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid username template: ", function,
                                                   " needs a length >= 0, got \"",
                                                   text.substr(0, 32), "\""));
  }
  return n;
}

std::string Random62(Random& random, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += kBase62[random.Uniform(62)];
  return out;
}

std::string Uuid(Random& random) {
  std::string b = random.Bytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  const std::string h = HexEncode(b);
  return absl::StrCat(h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4), "-",
                      h.substr(16, 4), "-", h.substr(20, 12));
}

absl::StatusOr<std::string> Printf(const std::vector<std::string>& args) {
  const std::string& format = args[0];
  std::string out;
  size_t next = 1;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    const char verb = format[++i];
    if (verb == '%') {
      out += '%';
    } else if ((verb == 's' || verb == 'd') && next < args.size()) {
      out += args[next++];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid username template: printf supports %s, %d and %% with one argument each, "
          "got %",
          std::string(1, verb)));
    }
  }
  return out;
}

absl::StatusOr<std::string> Call(const std::string& name, const std::vector<std::string>& a,
                                 const Context& ctx) {
  if (name == "random") {
    absl::StatusOr<int64_t> n = Length(a[0], name);
    if (!n.ok()) return n.status();
    if (*n > 1024) return absl::InvalidArgumentError("invalid username template: random > 1024");
    return Random62(ctx.random, static_cast<size_t>(*n));
  }
  if (name == "truncate" || name == "truncate_sha256") {
    absl::StatusOr<int64_t> n = Length(a[0], name);
    if (!n.ok()) return n.status();
    const size_t max = static_cast<size_t>(*n);
    if (a[1].size() <= max) return a[1];
    if (name == "truncate") return TruncateUtf8(a[1], max);
    if (max <= 8) {
      return absl::InvalidArgumentError("invalid username template: truncate_sha256 needs > 8");
    }
    return absl::StrCat(TruncateUtf8(a[1], max - 8), HexEncode(Sha256::Hash(a[1])).substr(0, 8));
  }
  if (name == "uppercase") return absl::AsciiStrToUpper(a[0]);
  if (name == "lowercase") return absl::AsciiStrToLower(a[0]);
  if (name == "replace") return absl::StrReplaceAll(a[2], {{a[0], a[1]}});
  if (name == "sha256") return HexEncode(Sha256::Hash(a[0]));
  if (name == "base64") return absl::Base64Escape(a[0]);
  if (name == "unix_time") return absl::StrCat(absl::ToUnixSeconds(ctx.now));
  if (name == "unix_time_millis") return absl::StrCat(absl::ToUnixMillis(ctx.now));
  if (name == "uuid") return Uuid(ctx.random);
  return Printf(a);  // The parser admits no other name.
}

absl::StatusOr<std::string> Eval(const Node& node, const Context& ctx,
                                 const std::string* piped = nullptr) {
  switch (node.kind) {
    case Node::Kind::kText:
    case Node::Kind::kString:
    case Node::Kind::kNumber:
      return node.text;
    case Node::Kind::kField:
      return node.text == ".DisplayName" ? ctx.metadata.display_name : ctx.metadata.role_name;
    case Node::Kind::kPipeline: {
      absl::StatusOr<std::string> value = Eval(*node.children[0], ctx);
      for (size_t i = 1; i < node.children.size() && value.ok(); ++i) {
        value = Eval(*node.children[i], ctx, &*value);
      }
      return value;
    }
    case Node::Kind::kCall: {
      std::vector<std::string> args;
      for (const NodePtr& child : node.children) {
        absl::StatusOr<std::string> arg = Eval(*child, ctx);
        if (!arg.ok()) return arg.status();
        args.push_back(*std::move(arg));
      }
      if (piped != nullptr) args.push_back(*piped);
      return Call(node.text, args, ctx);
    }
  }
  return absl::InternalError("unknown template node");
}

}  // namespace

absl::StatusOr<UsernameTemplate> UsernameTemplate::Parse(absl::string_view text) {
  if (text.size() > kUsernameTemplateBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("invalid username template: longer than ",
                                                   kUsernameTemplateBytesMax, " bytes"));
  }
  absl::StatusOr<std::vector<NodePtr>> parts = Parser(text).Parts();
  if (!parts.ok()) return parts.status();
  UsernameTemplate out;
  out.parts_ = *std::move(parts);
  return out;
}

absl::StatusOr<std::string> UsernameTemplate::Render(const sdk::UsernameMetadata& metadata,
                                                     Random& random, absl::Time now) const {
  const Context ctx{metadata, random, now};
  std::string out;
  for (const NodePtr& part : parts_) {
    absl::StatusOr<std::string> value = Eval(*part, ctx);
    if (!value.ok()) return value.status();
    absl::StrAppend(&out, *value);
  }
  return out;
}

}  // namespace bulwark::examples::postgres
