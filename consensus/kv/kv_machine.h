#pragma once
// KvMachine: the default replicated application (docs/protocol.md, "Replicated
// database"), a key-value store with PUT, DEL, CAS and GET behind the total order.
// It sits behind the StateMachine interface (consensus/state_machine.h); the core
// knows nothing of it, and another deterministic application can replace it.
//
// Semantics of one request (client, nonce, ops[1..m]):
//  - The ops apply in order, each seeing the effects of the ops before it (in the
//    same request and in earlier requests of the epoch). Every op applies: a CAS
//    whose comparison fails writes nothing but does NOT abort the ops after it;
//    a client that wants "all or nothing" reads the CAS output and compensates.
//    Atomicity is per epoch: the whole epoch is one storage batch, so no reader
//    and no crash ever sees half a request.
//  - Outputs: PUT -> {ok, previous value if the op asks for it (Op::previous),
//    else none}; DEL -> the same;
//    CAS(key, expected, new) -> {ok = (current == expected), previous value}, and
//    the swap happens iff ok (expected = nullopt means "key absent");
//    GET -> {ok, value at this position in the order}.
//
// Skipped requests (applied nowhere, identical on every honest node):
//  - malformed: chain_id is not this cluster's, zero ops, more ops than
//    Limits::request_ops_max, a key or value over its limit, or fields that the
//    op type does not use (expected on a non-CAS op, a value on GET/DEL,
//    `previous` on GET/CAS) (Skip::Invalid);
//  - over an output cap: the request's outputs (each counted as its value plus
//    kOutputOverhead) exceed Limits::request_output_bytes_max (Skip::OutputsOver),
//    or would take the epoch's outputs past Limits::epoch_output_bytes_max
//    (Skip::EpochFull: submit it again). The ops stop at the first output past
//    the cap and nothing they wrote is kept. A duplicate's stored outputs count
//    towards the epoch's cap; past it the duplicate is answered without them.
//    A malformed request does NOT consume its nonce: a request signed for another
//    cluster, replayed here by a Byzantine proposer, must not burn the nonce of
//    the client's real request. Client signatures are not re-checked here: the
//    core verified them before proposing or accepting a block.
//  - duplicate: per client the dedup table keeps the highest committed nonce h_c
//    and a bitmap of the 1024 nonces below it. A nonce <= h_c - 1024, equal to
//    h_c, or already marked is a duplicate (also when its first copy is earlier
//    in the same epoch). A duplicate's result carries the outputs stored for that
//    nonce when they are still kept (nonces in (h_c - 1024, h_c]), else none.
//    Nonces may commit out of order inside the window.
//  - expired: a request applied in epoch e with expires < e (it may commit only
//    up to its expiry epoch: Skip::Expired), or with expires > e + H, H the
//    cluster's request_expiry_max_epochs (Skip::ExpiresTooFar), so that no
//    committed request can be replayed more than H epochs after it committed.
//    Checked after the dedup table (a retry of a committed request is answered
//    as a duplicate while its client's entry lasts) and, like a malformed
//    request, it does not consume its nonce.
//  - forbidden: a well-formed, fresh request with an operation its client may
//    not perform (consensus/kv/permissions.h, from the cluster file). Nothing of
//    it applies and, like a malformed request, it does not consume its nonce.
//    Checked after the dedup table, so a retry of a committed request is still
//    answered as a duplicate.
//
// Storage layout (KvStorage keys):
//   "\x01" ‖ user key                     user data (the prefix keeps users away
//                                         from the metadata below)
//   "\x00tob/last_applied"                u64 big endian
//   "\x00tob/state_digest"                32 bytes
//   "\x00tob/dedup/" ‖ client pk           u64 BE h_c ‖ 128-byte bitmap
//                                         (bit i of byte i/8, LSB first, marks h_c-1-i)
//                                         ‖ u64 BE x_c, the largest expires of the
//                                         client's committed requests
//   "\x00tob/out/" ‖ client pk ‖ u64 BE n  the outputs of (client, n), kept while
//                                         n is inside the window
//   "\x00tob/xqn/" ‖ u64 BE X             u32 BE: chunks in the expiry list of X
//   "\x00tob/xq/" ‖ u64 BE X ‖ u32 BE i    chunk i of that list: up to
//                                         kExpiryChunkClients client keys whose x_c
//                                         became X (appended when x_c grows)
//   "\x00tob/xcur"                        u64 BE X ‖ u32 BE chunk: where the sweep
//                                         of expired entries stands
//
// Dedup pruning. Every committed request of client c has expires <= x_c, so once
// the epoch passes x_c the expiry rule refuses every one of them before the
// dedup table is asked: the entry and its stored outputs can go. At the start of
// each epoch e the machine sweeps the expiry lists X < e in order, dropping each
// listed client whose entry still has x_c == X (a client whose x_c grew since
// was listed again under the larger X). The sweep does at most
// kSweepUnitsBase + 2 · (requests in the epoch) units of work (a client looked
// at, or one list opened), continuing where it stopped in the next epoch, so the
// work is amortized over the commits that created the lists and no epoch scans
// the table. Entries, lists and cursor are state like the rest (the state root
// and snapshots carry them); the table holds the clients that committed within
// the last H epochs, plus what the sweep has not reached yet.
//
// State digest (docs/protocol.md, "Replicated database"), with Hasher::field
// length prefixes:
//   state_digest(e) = H(field("tobd-state-v1"), prev state_digest, output_digest(e),
//                       H(write-set), H(outputs))
//   H(write-set) = H(field("tobd-writes-v1"), u64 count, for each user key in
//                    sorted order: field(key), u64 present, field(value or empty))
//   H(outputs)   = H(field("tobd-outputs-v1"), u64 count, for each result in
//                    order: client, nonce, request digest, position, duplicate,
//                    skip (0; 1 malformed, expiry skips included; 2 forbidden),
//                    u64 count, per output:
//                    ok, present, field(value))
// Only ordered containers are iterated, so the digest is a function of the
// ordered requests and the previous state alone.

#include <array>
#include <map>
#include <optional>
#include <string>

#include "consensus/kv/kv_storage.h"
#include "consensus/kv/permissions.h"
#include "consensus/state_machine.h"

namespace tob::consensus::kv {

class KvMachine final : public StateMachine {
  public:
    static constexpr Nonce kDedupWindow = 1024;
    static constexpr std::size_t kExpiryChunkClients = 64;
    static constexpr std::uint64_t kSweepUnitsBase = 1024;

    /// Loads last_applied and the state digest from `storage` (zero for an empty
    /// store); dedup entries are read from storage on demand and cached.
    /// `permissions` come from the cluster file (the default lets every client key
    /// read and write every key).
    /// `expiry_max_epochs` is H (the cluster file's request_expiry_max_epochs).
    KvMachine(KvStorage& storage, const Digest& chain_id, const Limits& limits = {},
              Permissions permissions = Permissions::open_to_all(),
              Epoch expiry_max_epochs = kRequestExpiryMaxEpochsDefault);

    Epoch last_applied() const override { return last_applied_; }
    Digest state_digest() const override { return state_digest_; }
    /// Requires epoch == last_applied()+1 (aborts otherwise: a core bug). Commits
    /// one batch to storage before returning.
    EpochResult apply_epoch(Epoch epoch, const Digest& output_digest,
                            const std::vector<Request>& ordered) override;
    EpochResult apply_epoch_with_digests(Epoch epoch, const Digest& output_digest,
                                         const std::vector<Request>& ordered,
                                         const std::vector<Digest>& digests) override;
    bool committed(const PublicKey& client, Nonce nonce) const override;
    /// expires < last_applied()+1, or expires > last_applied()+1+H.
    bool expired(const Request& request) const override;
    /// Re-reads last_applied and the digest and drops the dedup cache (a snapshot
    /// was installed into the storage underneath).
    void reload() override;

    /// A committed user value (local read, not linearizable).
    std::optional<Bytes> read(ByteView user_key) const;
    /// The stored outputs of (client, nonce), if the nonce committed and is still
    /// inside the window.
    std::optional<std::vector<OpOutput>> stored_outputs(const PublicKey& client, Nonce nonce) const;

    /// The first damaged entry found in storage (a dedup entry of the wrong size,
    /// stored outputs that do not parse), if any: the machine reads it as absent
    /// and keeps going, and the core stops voting (StateMachine::damage).
    std::optional<std::string> damage() const override { return damage_; }

    /// Storage key of a user key (exposed for tests and tools).
    static Bytes user_storage_key(ByteView user_key);
    /// Whether `client` has a dedup entry, and the largest expires it remembers
    /// (tests and tools).
    std::optional<Epoch> dedup_expiry(const PublicKey& client) const;

  private:
    struct DedupEntry {
        Nonce high = 0;                        // h_c
        std::array<std::uint64_t, 16> bits{};  // bit i marks nonce high-1-i
        Epoch expiry = 0;                      // x_c: largest expires committed
        bool operator==(const DedupEntry&) const = default;
    };
    enum class Seen { Fresh, Duplicate };

    /// The working state of one epoch, layered over the committed store
    /// (kv_machine.cpp).
    struct EpochWork;

    std::optional<DedupEntry> load_entry(const PublicKey& client) const;
    static Seen check(const std::optional<DedupEntry>& entry, Nonce nonce);
    bool malformed(const Request& request) const;

    // The steps of apply_epoch: one request at a time into `work`, then the
    // digest and the single storage batch.
    RequestResult apply_request(EpochWork& work, const Request& request, const Digest& digest,
                                std::uint32_t position) const;
    /// The outputs of `ops`, their writes into `mine` (over the epoch's writes);
    /// nullopt as soon as `bytes` (the outputs' size so far) exceeds `cap`.
    std::optional<std::vector<OpOutput>> apply_ops(const EpochWork& work, const Request& request,
                                                   std::map<Bytes, std::optional<Bytes>>& mine,
                                                   std::uint64_t cap, std::uint64_t& bytes) const;
    static void mark_nonce(EpochWork& work, const PublicKey& client,
                           std::optional<DedupEntry>& entry, Nonce nonce);
    /// The entry of `client` in this epoch's working state (loaded on first use).
    std::optional<DedupEntry>& work_entry(EpochWork& work, const PublicKey& client) const;
    /// Drops the entries whose expiry passed (see "Dedup pruning"), within `budget`.
    void sweep_expired(EpochWork& work, Epoch epoch, std::uint64_t budget) const;
    /// Appends the clients whose x_c grew this epoch to the expiry lists.
    void write_expiry_lists(EpochWork& work) const;
    Digest next_state_digest(const EpochWork& work, const EpochResult& result) const;
    static KvBatch epoch_batch(const EpochWork& work, Epoch epoch, const Digest& next_digest);

    KvStorage& storage_;
    Digest chain_id_;
    Limits limits_;
    Permissions permissions_;
    Epoch expiry_max_epochs_;
    Epoch last_applied_ = 0;
    Digest state_digest_{};
    // Cache of dedup entries read from or written to storage (committed state).
    // std::nullopt caches "no entry". Cleared when it grows past a bound.
    mutable std::map<PublicKey, std::optional<DedupEntry>> cache_;
    mutable std::optional<std::string> damage_;
    void note_damage(std::string what) const;
};

}  // namespace tob::consensus::kv
