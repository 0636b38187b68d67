#pragma once
// Curve25519 key pairs for the encrypted transport (CurveZMQ, docs/security.md).
//
// A node has its own Curve key pair in a key file beside its signing key
// (crypto/keyfile.h, type curve25519); its public key is in the cluster file.
// A client's Curve key pair is derived from its Ed25519 client key
// (from_signing_key: libsodium's Ed25519-to-X25519 conversion), so a client has
// one secret and the cluster file's client permissions, which name Ed25519 keys,
// also name the Curve keys the nodes accept (docs/decisions.md).

#include <array>
#include <cstdint>
#include <optional>

#include "crypto/sign.h"

namespace tob::crypto {

using CurvePublicKey = std::array<std::uint8_t, 32>;
using CurveSecretKey = std::array<std::uint8_t, 32>;

/// An X25519 key pair. The secret is wiped (sodium_memzero) on destruction.
class CurveKeyPair {
  public:
    static CurveKeyPair generate();
    /// The pair whose secret is `secret` (the public key is recomputed).
    static CurveKeyPair from_secret(const CurveSecretKey& secret);
    /// The X25519 pair derived from an Ed25519 key (its public key equals
    /// curve_public_from_ed25519(key.public_key())).
    static CurveKeyPair from_signing_key(const SigningKey& key);

    CurveKeyPair(const CurveKeyPair&);
    CurveKeyPair& operator=(const CurveKeyPair&);
    ~CurveKeyPair();

    const CurvePublicKey& public_key() const { return pk_; }
    const CurveSecretKey& secret_key() const { return sk_; }

  private:
    CurveKeyPair() = default;
    CurveSecretKey sk_{};
    CurvePublicKey pk_{};
};

/// The X25519 public key of an Ed25519 public key; nullopt when `ed25519` is not
/// a valid point (no client could hold its secret).
std::optional<CurvePublicKey> curve_public_from_ed25519(const PublicKey& ed25519);

/// The X25519 public key of `secret` (crypto_scalarmult_base).
CurvePublicKey curve_public_of(const CurveSecretKey& secret);

}  // namespace tob::crypto
