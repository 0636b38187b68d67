#pragma once
// The cryptography the core uses, as an interface: the daemon and `tobsim --crypto
// real` plug in Ed25519 and the threshold coin (RealCryptoSuite), large simulation
// sweeps plug in a keyed-hash stand-in (sim). All methods are deterministic.

#include <map>
#include <optional>
#include <string_view>

#include "consensus/messages.h"
#include "consensus/types.h"

namespace tob::consensus {

class CryptoSuite {
  public:
    virtual ~CryptoSuite() = default;

    /// Signs tag ‖ 0 ‖ payload with this node's key.
    virtual Signature sign(std::string_view tag, ByteView payload) const = 0;
    /// Checks a cluster member's signature. False for a non-member.
    virtual bool verify(NodeId signer, std::string_view tag, ByteView payload,
                        const Signature& sig) const = 0;
    /// Checks a client's signature (client id = its public key).
    virtual bool verify_client(const PublicKey& client, std::string_view tag, ByteView payload,
                               const Signature& sig) const = 0;
    /// Checks a client request's signature (verify_client over
    /// request_sign_payload). `digest` must be digest_of(encode(r)): it names the
    /// signed fields and the signature together, so a suite that remembers answers
    /// can key them by it instead of hashing the request again.
    virtual bool verify_request(const Request& r, const Digest& digest) const;

    /// This node's coin share for a coin name (deterministic).
    virtual Bytes coin_share(ByteView name) const = 0;
    /// Checks member `from`'s share for `name`.
    virtual bool verify_coin_share(NodeId from, ByteView name, ByteView share) const = 0;
    /// Combines at least t+1 verified shares from distinct members into the coin
    /// bit; nullopt if there are too few.
    virtual std::optional<bool> combine_coin(ByteView name,
                                             const std::map<NodeId, Bytes>& shares) const = 0;
};

/// The coin name of ABA(epoch, proposer) round r: ("tobd-coin-v1", chain_id, e, j, r).
Bytes coin_name(const Digest& chain_id, Epoch epoch, NodeId proposer, Round round);

/// Encodes an envelope and signs it with this node's key (`crypto`); a
/// channel-authenticated kind (Kind::Aba) is not signed: its sig is all zero.
Bytes seal_envelope(const CryptoSuite& crypto, const Digest& chain_id, NodeId sender, Epoch epoch,
                    Kind kind, Bytes body);

}  // namespace tob::consensus
