// ES512 with OpenSSL 3: the signing equation on BIGNUM/EC_POINT (non-deprecated 3.0 calls) so the
// nonce comes from the caller, verification through EVP_DigestVerify.
#include "base/crypto/es512.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status/status_macros.h"

namespace bulwark::crypto {
namespace {

struct Deleter {
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
  void operator()(EC_POINT* p) const { EC_POINT_clear_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Deleter>;

absl::Status OpenSslError(absl::string_view what) {
  const unsigned long err = ERR_get_error();
  char reason[256] = "no OpenSSL error recorded";
  if (err != 0) ERR_error_string_n(err, reason, sizeof(reason));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat("es512: OpenSSL ", what, ": ", reason));
}

// The curve, made once (EC_GROUP objects are immutable after construction and may be shared).
const EC_GROUP* P521() {
  static EC_GROUP* const group = EC_GROUP_new_by_curve_name(NID_secp521r1);
  return group;
}

absl::StatusOr<Owned<BIGNUM>> NewBn() {
  Owned<BIGNUM> bn(BN_secure_new());
  if (bn == nullptr) return OpenSslError("BN_secure_new");
  return bn;
}

absl::StatusOr<Owned<BIGNUM>> BnFromBytes(absl::string_view bytes) {
  Owned<BIGNUM> bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                             static_cast<int>(bytes.size()), nullptr));
  if (bn == nullptr) return OpenSslError("BN_bin2bn");
  return bn;
}

// 1 + (seed mod (n - 1)): uniform enough in 1..n-1 for a seed twice the order's size.
absl::StatusOr<Owned<BIGNUM>> ScalarFromSeed(absl::string_view seed, BN_CTX* ctx) {
  if (seed.size() != kP521SeedBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("es512: a seed must be ", kP521SeedBytes, " bytes, got ", seed.size()));
  }
  ASSIGN_OR_RETURN(Owned<BIGNUM> wide, BnFromBytes(seed));
  ASSIGN_OR_RETURN(Owned<BIGNUM> n_minus_1, NewBn());
  if (BN_copy(n_minus_1.get(), EC_GROUP_get0_order(P521())) == nullptr ||
      BN_sub_word(n_minus_1.get(), 1) != 1) {
    return OpenSslError("order - 1");
  }
  ASSIGN_OR_RETURN(Owned<BIGNUM> k, NewBn());
  BN_set_flags(wide.get(), BN_FLG_CONSTTIME);
  if (BN_nnmod(k.get(), wide.get(), n_minus_1.get(), ctx) != 1 || BN_add_word(k.get(), 1) != 1) {
    return OpenSslError("reduce the seed");
  }
  BN_set_flags(k.get(), BN_FLG_CONSTTIME);
  return k;
}

absl::StatusOr<std::string> PointToBytes(const EC_POINT* point, BN_CTX* ctx) {
  std::string out(kP521PublicKeyBytes, '\0');
  const size_t written =
      EC_POINT_point2oct(P521(), point, POINT_CONVERSION_UNCOMPRESSED,
                         reinterpret_cast<unsigned char*>(out.data()), out.size(), ctx);
  if (written != kP521PublicKeyBytes) return OpenSslError("EC_POINT_point2oct");
  return out;
}

absl::StatusOr<std::string> PublicKeyOf(const BIGNUM* d, BN_CTX* ctx) {
  Owned<EC_POINT> q(EC_POINT_new(P521()));
  if (q == nullptr) return OpenSslError("EC_POINT_new");
  // With a scalar for the generator and no other points OpenSSL uses its constant-time ladder.
  if (EC_POINT_mul(P521(), q.get(), d, nullptr, nullptr, ctx) != 1) {
    return OpenSslError("EC_POINT_mul");
  }
  return PointToBytes(q.get(), ctx);
}

absl::StatusOr<SecureBuffer> ScalarBytes(const BIGNUM* value) {
  SecureBuffer out(kP521ScalarBytes);
  if (BN_bn2binpad(value, out.data(), static_cast<int>(out.size())) !=
      static_cast<int>(kP521ScalarBytes)) {
    return OpenSslError("BN_bn2binpad");
  }
  return out;
}

absl::StatusOr<std::string> Sha512(absl::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(message.data(), message.size(), digest, &size, EVP_sha512(), nullptr) != 1) {
    return OpenSslError("SHA-512");
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

}  // namespace

absl::StatusOr<P521SigningKey> P521SigningKey::FromSeed(absl::string_view seed) {
  Owned<BN_CTX> ctx(BN_CTX_secure_new());
  if (ctx == nullptr) return OpenSslError("BN_CTX_secure_new");
  ASSIGN_OR_RETURN(Owned<BIGNUM> d, ScalarFromSeed(seed, ctx.get()));
  ASSIGN_OR_RETURN(SecureBuffer scalar, ScalarBytes(d.get()));
  ASSIGN_OR_RETURN(std::string public_key, PublicKeyOf(d.get(), ctx.get()));
  return P521SigningKey(std::move(scalar), std::move(public_key));
}

absl::StatusOr<P521SigningKey> P521SigningKey::FromScalar(absl::string_view scalar) {
  if (scalar.size() != kP521ScalarBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "es512: a private key must be ", kP521ScalarBytes, " bytes, got ", scalar.size()));
  }
  Owned<BN_CTX> ctx(BN_CTX_secure_new());
  if (ctx == nullptr) return OpenSslError("BN_CTX_secure_new");
  ASSIGN_OR_RETURN(Owned<BIGNUM> d, BnFromBytes(scalar));
  BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  if (BN_is_zero(d.get()) || BN_cmp(d.get(), EC_GROUP_get0_order(P521())) >= 0) {
    return absl::InvalidArgumentError("es512: the private key is not in 1..n-1");
  }
  ASSIGN_OR_RETURN(std::string public_key, PublicKeyOf(d.get(), ctx.get()));
  return P521SigningKey(SecureBuffer(scalar), std::move(public_key));
}

absl::StatusOr<std::string> P521SigningKey::Sign(absl::string_view message,
                                                 absl::string_view nonce_seed) const {
  Owned<BN_CTX> ctx(BN_CTX_secure_new());
  if (ctx == nullptr) return OpenSslError("BN_CTX_secure_new");
  const BIGNUM* n = EC_GROUP_get0_order(P521());
  ASSIGN_OR_RETURN(Owned<BIGNUM> k, ScalarFromSeed(nonce_seed, ctx.get()));
  ASSIGN_OR_RETURN(Owned<BIGNUM> d, BnFromBytes(scalar_.view()));
  BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  // SHA-512 is shorter than the order, so the whole digest is e (FIPS 186-4 §6.4).
  ASSIGN_OR_RETURN(std::string digest, Sha512(message));
  ASSIGN_OR_RETURN(Owned<BIGNUM> e, BnFromBytes(digest));

  // r = (k·G).x mod n
  Owned<EC_POINT> kg(EC_POINT_new(P521()));
  if (kg == nullptr) return OpenSslError("EC_POINT_new");
  if (EC_POINT_mul(P521(), kg.get(), k.get(), nullptr, nullptr, ctx.get()) != 1) {
    return OpenSslError("EC_POINT_mul");
  }
  ASSIGN_OR_RETURN(Owned<BIGNUM> x, NewBn());
  if (EC_POINT_get_affine_coordinates(P521(), kg.get(), x.get(), nullptr, ctx.get()) != 1) {
    return OpenSslError("EC_POINT_get_affine_coordinates");
  }
  ASSIGN_OR_RETURN(Owned<BIGNUM> r, NewBn());
  if (BN_nnmod(r.get(), x.get(), n, ctx.get()) != 1) return OpenSslError("r mod n");

  // s = k^-1 (e + r·d) mod n; the inverse by Fermat (k^(n-2)) in constant time.
  ASSIGN_OR_RETURN(Owned<BIGNUM> n_minus_2, NewBn());
  if (BN_copy(n_minus_2.get(), n) == nullptr || BN_sub_word(n_minus_2.get(), 2) != 1) {
    return OpenSslError("order - 2");
  }
  ASSIGN_OR_RETURN(Owned<BIGNUM> k_inverse, NewBn());
  if (BN_mod_exp_mont_consttime(k_inverse.get(), k.get(), n_minus_2.get(), n, ctx.get(), nullptr) !=
      1) {
    return OpenSslError("k^-1");
  }
  ASSIGN_OR_RETURN(Owned<BIGNUM> rd, NewBn());
  ASSIGN_OR_RETURN(Owned<BIGNUM> sum, NewBn());
  ASSIGN_OR_RETURN(Owned<BIGNUM> s, NewBn());
  if (BN_mod_mul(rd.get(), r.get(), d.get(), n, ctx.get()) != 1 ||
      BN_mod_add(sum.get(), e.get(), rd.get(), n, ctx.get()) != 1 ||
      BN_mod_mul(s.get(), k_inverse.get(), sum.get(), n, ctx.get()) != 1) {
    return OpenSslError("s");
  }
  if (BN_is_zero(r.get()) || BN_is_zero(s.get())) {
    return absl::InternalError("es512: the nonce gave a degenerate signature; sign again");
  }
  ASSIGN_OR_RETURN(SecureBuffer r_bytes, ScalarBytes(r.get()));
  ASSIGN_OR_RETURN(SecureBuffer s_bytes, ScalarBytes(s.get()));
  return absl::StrCat(r_bytes.view(), s_bytes.view());
}

absl::Status VerifyEs512(absl::string_view public_key, absl::string_view message,
                         absl::string_view signature) {
  if (signature.size() != kEs512SignatureBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "es512: a signature must be ", kEs512SignatureBytes, " bytes, got ", signature.size()));
  }
  if (public_key.size() != kP521PublicKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "es512: a public key must be ", kP521PublicKeyBytes, " bytes, got ", public_key.size()));
  }
  {
    // oct2point refuses a point that is not on the curve.
    Owned<EC_POINT> q(EC_POINT_new(P521()));
    if (q == nullptr) return OpenSslError("EC_POINT_new");
    if (EC_POINT_oct2point(P521(), q.get(),
                           reinterpret_cast<const unsigned char*>(public_key.data()),
                           public_key.size(), nullptr) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError("es512: the public key is not a point on P-521");
    }
  }
  Owned<EVP_PKEY_CTX> pctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (pctx == nullptr || EVP_PKEY_fromdata_init(pctx.get()) != 1) {
    return OpenSslError("EVP_PKEY_fromdata_init");
  }
  char group[] = "P-521";
  std::string point(public_key);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end(),
  };
  EVP_PKEY* raw_key = nullptr;
  if (EVP_PKEY_fromdata(pctx.get(), &raw_key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return OpenSslError("EVP_PKEY_fromdata");
  }
  Owned<EVP_PKEY> key(raw_key);

  // EVP wants the DER form of (r, s).
  Owned<ECDSA_SIG> sig(ECDSA_SIG_new());
  if (sig == nullptr) return OpenSslError("ECDSA_SIG_new");
  ASSIGN_OR_RETURN(Owned<BIGNUM> r, BnFromBytes(signature.substr(0, kP521ScalarBytes)));
  ASSIGN_OR_RETURN(Owned<BIGNUM> s, BnFromBytes(signature.substr(kP521ScalarBytes)));
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return OpenSslError("ECDSA_SIG_set0");
  r.release();  // Owned by sig now.
  s.release();
  unsigned char* der = nullptr;
  const int der_size = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_size <= 0) return OpenSslError("i2d_ECDSA_SIG");
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> der_owner(
      der, [](unsigned char* p) { OPENSSL_free(p); });

  Owned<EVP_MD_CTX> md(EVP_MD_CTX_new());
  if (md == nullptr) return OpenSslError("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha512(), nullptr, key.get()) != 1) {
    return OpenSslError("EVP_DigestVerifyInit");
  }
  const int verified =
      EVP_DigestVerify(md.get(), der, static_cast<size_t>(der_size),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  if (verified != 1) return absl::UnauthenticatedError("es512: signature does not verify");
  return absl::OkStatus();
}

}  // namespace bulwark::crypto
