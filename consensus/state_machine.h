#pragma once
// The replicated application behind the total order. The core hands it each
// delivered epoch's ordered requests; it applies them deterministically, keeps
// its writes and last-applied epoch atomic and durable, and returns the outputs
// and the new state digest.
//
// state_digest(e) = H(state_digest(e-1), output_digest(e), H(sorted write-set of e),
//                     H(outputs of e))       (docs/protocol.md, "Commit proof")

#include <optional>
#include <string>
#include <vector>

#include "consensus/messages.h"

namespace tob::consensus {

/// What one operation produced, identical on every honest node.
struct OpOutput {
    bool ok = true;              // CAS: whether it swapped; others: true
    std::optional<Bytes> value;  // GET: value read; PUT/DEL/CAS: previous value
    bool operator==(const OpOutput&) const = default;
};

/// The fate of one request in the epoch's order.
/// Why a request was skipped as malformed (the same on every node).
enum class Skip : std::uint8_t {
    None = 0,           // not skipped
    Invalid = 1,        // chain id, op count, key/value sizes, unused fields
    OutputsOver = 2,    // its outputs exceed Limits::request_output_bytes_max
    EpochFull = 3,      // the epoch's outputs would exceed Limits::epoch_output_bytes_max
    Expired = 4,        // applied in an epoch after Request::expires: it can never commit
    ExpiresTooFar = 5,  // Request::expires lies more than the cluster's
                        // request_expiry_max_epochs beyond the epoch
};

/// The default of the cluster file's request_expiry_max_epochs (H, [protocol]):
/// a request applied in epoch e is skipped unless e <= expires <= e + H.
inline constexpr Epoch kRequestExpiryMaxEpochsDefault = 100'000;

struct RequestResult {
    PublicKey client{};
    Nonce nonce = 0;
    Digest request_digest{};
    std::uint32_t position = 0;  // index in the epoch's ordered output
    bool duplicate = false;      // skipped by the dedup table (outputs = stored ones if known)
    bool malformed = false;      // skipped the same way on every node
    Skip skip = Skip::None;      // why, when malformed
    bool forbidden = false;      // skipped on every node: the client lacks a permission
                                 // (consensus/kv/permissions.h); never with malformed
    std::vector<OpOutput> outputs;
};

struct EpochResult {
    Epoch epoch = 0;
    Digest output_digest{};
    Digest state_digest{};
    std::vector<RequestResult> results;
    /// At checkpoint epochs: the root of the whole state after this epoch, as
    /// signed in COMMIT (set by the core, consensus/state_transfer.h).
    std::optional<Digest> checkpoint_root;
};

class StateMachine {
  public:
    virtual ~StateMachine() = default;
    /// Highest epoch applied (0 = none) and the digest chain value after it.
    virtual Epoch last_applied() const = 0;
    virtual Digest state_digest() const = 0;
    /// Applies epoch e = last_applied()+1 atomically and durably. `ordered` is the
    /// epoch's requests in delivery order, before deduplication.
    virtual EpochResult apply_epoch(Epoch epoch, const Digest& output_digest,
                                    const std::vector<Request>& ordered) = 0;
    /// The same, with `digests[i]` = digest_of(encode(ordered[i])), which the core
    /// already holds (RequestResult::request_digest); a machine that uses them
    /// saves encoding and hashing every request again.
    virtual EpochResult apply_epoch_with_digests(Epoch epoch, const Digest& output_digest,
                                                 const std::vector<Request>& ordered,
                                                 const std::vector<Digest>& digests) {
        (void)digests;
        return apply_epoch(epoch, output_digest, ordered);
    }
    /// True if (client, nonce) has committed (dedup table), for pool pruning.
    virtual bool committed(const PublicKey& client, Nonce nonce) const = 0;
    /// True if `request` would be skipped by its expiry in the next epoch
    /// (last_applied() + 1), for pool pruning (a machine without expiry: never).
    /// Monotone, as the pool relies on: once true for a request it stays true
    /// as epochs are applied, and a request with a lower `expires` is expired no
    /// later than one with a higher (RequestPool::remove_applied).
    virtual bool expired(const Request&) const { return false; }
    /// What of the stored state was found damaged (nullopt: nothing). A damaged
    /// machine keeps going, but its results may differ from the cluster's: the
    /// core then signs nothing more (a non-voting follower) and the node alarms.
    virtual std::optional<std::string> damage() const { return std::nullopt; }
    /// The stored state was replaced underneath (a snapshot was installed,
    /// consensus/state_transfer.h): re-read last_applied, the digest, any cache.
    virtual void reload() {}
};

}  // namespace tob::consensus
