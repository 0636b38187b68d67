#pragma once
// Ed25519 keys and detached signatures (libsodium crypto_sign_*).
// Every signature in tobd covers a domain tag followed by the payload:
//   signed bytes = tag ‖ 0x00 ‖ payload
// so a signature made for one purpose can never be replayed as another.

#include <array>
#include <cstdint>
#include <string_view>

#include "crypto/hash.h"

namespace tob::crypto {

using PublicKey = std::array<std::uint8_t, 32>;
using Signature = std::array<std::uint8_t, 64>;
using Seed = std::array<std::uint8_t, 32>;

/// An Ed25519 secret key. The bytes are wiped (sodium_memzero) on destruction.
class SigningKey {
  public:
    static SigningKey generate();
    static SigningKey from_seed(const Seed& seed);
    SigningKey(const SigningKey&);
    SigningKey& operator=(const SigningKey&);
    ~SigningKey();

    const PublicKey& public_key() const { return pk_; }
    Seed seed() const;
    Signature sign(std::string_view tag, ByteView payload) const;

  private:
    SigningKey() = default;
    std::array<std::uint8_t, 64> sk_{};
    PublicKey pk_{};
};

/// True iff sig is a valid signature by pk over tag ‖ 0x00 ‖ payload.
bool verify(const PublicKey& pk, std::string_view tag, ByteView payload, const Signature& sig);

}  // namespace tob::crypto
