#pragma once
// Key files. Every secret key file is written with mode 0600 (created with
// O_EXCL|O_CREAT then fsynced, or atomically replaced via a temp file + rename),
// and loading refuses a file that group or others can read or write, a file that
// is truncated or corrupt (a checksum line guards the contents), or a file of
// another key type — each with an error that names the file and the problem.
//
// Format (text, one field per line):
//   tobd-key-v1
//   type <ed25519|coin-share|curve25519>
//   <type-specific fields as "name hex">
//   check <hex BLAKE2b-256 of all previous lines>
//
// Exactly (written in lowercase hex, every line ends in '\n', the checksum
// covers the bytes of all previous lines including their newlines):
//   ed25519:     "seed <32 bytes>" then "public <32 bytes>" (loading checks that
//                the seed derives the public key)
//   coin-share:  "index <4 bytes, big endian>" then "x <32 bytes>" (loading checks
//                that x is a canonical, non-zero scalar)
//   curve25519:  "secret <32 bytes>" then "public <32 bytes>" (a node's transport
//                key, crypto/curve.h; loading checks that the secret derives the
//                public key)
// Files larger than 4096 bytes are refused unread.

#include <filesystem>
#include <optional>
#include <string>
#include <variant>

#include "crypto/coin.h"
#include "crypto/curve.h"
#include "crypto/sign.h"

namespace tob::crypto {

struct KeyFileError {
    std::string
        message;  // e.g. "/etc/tobd/node.key: mode 0644 is readable by group or others; chmod 600"
};

template <class T>
using KeyResult = std::variant<T, KeyFileError>;

/// Writes the key; fails (KeyFileError) if the file exists unless overwrite.
std::optional<KeyFileError> write_signing_key(const std::filesystem::path& path,
                                              const SigningKey& key, bool overwrite = false);
KeyResult<SigningKey> load_signing_key(const std::filesystem::path& path);

std::optional<KeyFileError> write_coin_share(const std::filesystem::path& path,
                                             const CoinSecretShare& share, bool overwrite = false);
KeyResult<CoinSecretShare> load_coin_share(const std::filesystem::path& path);

std::optional<KeyFileError> write_curve_key(const std::filesystem::path& path,
                                            const CurveKeyPair& key, bool overwrite = false);
KeyResult<CurveKeyPair> load_curve_key(const std::filesystem::path& path);

}  // namespace tob::crypto
