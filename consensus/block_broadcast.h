#pragma once
// BlockBroadcast: per (epoch e, proposer j), the flood of j's block, the SEENs for
// it and its certificate (docs/protocol.md, "Flood", "Seen" and "Certify"). The
// agreement on which certified blocks make up an epoch is EpochSubset's; this
// unit decides what is *available*.
//
// The rules
// ---------
//  - The first valid block of (e, j) inside the window is *accepted*: stored
//    and SEEN, not relayed (the SEEN announces its digest; a member that lacks
//    a certified block fetches it, see Repair below). "Valid" depends only on
//    the block itself — j's envelope signature (checked by the shell), the
//    epoch inside the window, the cluster file's limits, every request well formed and validly
//    signed, the digest being that of the exact bytes j signed — never on this node's pool, state
//    or timing.
//  - A second, different block of (e, j) is equivocation: a Fault carrying both
//    signed envelopes. It is not SEEN, and kept only if a certificate names its digest (blocks are
//    stored and looked up by digest, never by (e, j), so the certified one is always the one used).
//  - SEEN(e, j, d) is signed only for the accepted block, after the Block record
//    (which precedes the Signed record in `persist`), so a node never SEENs a
//    block it could lose in a crash; the sign-log keeps it from SEENing two
//    digests of one (e, j), even across restarts.
//  - The proposer's vote is its block: j's envelope signature on the block
//    covers [chain_id, j, e, Block, d], a statement of one digest for (e, j)
//    that j's sign-log makes unique (one block per (e, j), ever) and that j
//    makes only for a block it stored first, so it says what j's SEEN would say.
//    j signs no SEEN for its own block; the accepted block counts as j's vote,
//    and in a certificate j's entry is that envelope signature. A SEEN by j for
//    its own block (nodes before this rule sent one) is still taken as the same
//    vote, in a tally and in a certificate, and a SEEN of j for another digest
//    than its accepted block is equivocation like any second SEEN.
//  - q = ⌈(n + t + 1)/2⌉ votes (SEENs, or the proposer's block) from distinct
//    members on one (e, j, d) form CERT(e, j, d). Arithmetic: at most t signers
//    lie, so q − t ≥ t + 1 honest signers hold the block — at least one honest
//    node can always serve it. Two certificates for different digests of one
//    (e, j) would need signer sets of q each out of n, which share 2q − n ≥ t + 1
//    members, one of them honest, and an honest node votes for one digest (a
//    SEEN, or its one block): so each (e, j) has at most one certified digest.
//    A certificate of only t + 1 votes would let an equivocating proposer with
//    t − 1 helpers certify two blocks (tobsim's --unsafe-quorum t+1 shows it).
//    Seeing two certified digests is therefore an alarm (more than t faulty
//    nodes), never something to resolve.
//  - A certificate from a peer is checked before it is used: q signers, strictly
//    increasing member ids, each signature over the compact SEEN payload (j's
//    entry: over its block envelope's payload, or over a SEEN payload).
//  - A certificate this node forms is used at once, but checked before it
//    leaves (servable_cert): a SEEN that came on its sender's own connection was
//    counted without checking its signature (consensus/messages.h,
//    verified_on_use), since the connection names its sender; a bad signature
//    there is that member's fault, and its vote is left out of what is sent.
//  - One SEEN per (e, j, sender): a second SEEN from the same sender for another
//    digest is equivocation (Fault with both envelopes); the first one counts.
//
// Repair: a missing certified block is fetched from t + 1 of its certificate's
// signers in turn (at least one of any t + 1 is honest and holds it), at most
// once per repair_initial_ms per digest; a missing certificate is asked of
// every peer at most once per repair_initial_ms per epoch.
//
// Bounds
// ------
// Per-epoch state exists only for epochs the Replica keeps (the window and
// recently delivered, not yet stable epochs: at most 5·W epochs) and holds, per
// epoch, at most n accepted digests, n² SEEN senders (one per (j, sender)),
// n certificates of at most cert_signatures_max signatures, and SEEN tallies for
// at most n² digests (a Byzantine sender can name one digest per (j, sender)).
// The block store holds at most one accepted block per (e, j) plus certified
// ones — at most 2n blocks of block_bytes_max bytes per kept epoch; blocks of
// pruned epochs are dropped (delivered epochs keep their blocks in the catch-up
// history instead). bytes() reports the envelope bytes held.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "consensus/crypto_suite.h"
#include "consensus/messages.h"
#include "consensus/step.h"

namespace tob::consensus {

struct BroadcastParams {
    std::uint32_t n = 4;
    std::uint32_t t = 1;
    NodeId self = 0;
    Digest chain_id{};
    Limits limits;
    std::uint32_t cert_quorum = 3;  // q (tobsim's --unsafe-quorum lowers it, to be caught)
    std::uint64_t repair_initial_ms = 200;
};

/// Whether one entry of `cert` is a valid vote of its signer for (epoch,
/// proposer, digest): a signature over the SEEN payload, or, for the
/// proposer's own entry, over its block envelope's payload
/// [chain_id, proposer, epoch, Block, digest] (see the rules above).
bool cert_signature_valid(const CryptoSuite& crypto, const Digest& chain_id,
                          const Certificate& cert, const SignerSig& entry);

class BlockBroadcast {
  public:
    struct StoredBlock {
        Bytes envelope;  // the proposer's original signed envelope
        Block block;
        Epoch epoch = 0;
        NodeId proposer = 0;
        Signature sig{};  // the envelope's: the proposer's vote for this block
        // digest_of(encode(r)) of each request, once the core checked them (empty
        // before; 32 bytes a request, less than a third of what the envelope holds).
        std::vector<Digest> request_digests;
    };
    enum class Accept { Equivocation, Stored, First };
    enum class Adopt { Known, Adopted, Conflict };

    BlockBroadcast(const BroadcastParams& params, const CryptoSuite& crypto);

    // ---- blocks -----------------------------------------------------------------
    /// Decodes a block envelope's body and checks it against its envelope and the
    /// limits. A bad block is a fault of its proposer (in `step`); nullopt then.
    /// `decoded`, if given, is that body already decoded (by the shell): it is
    /// moved from instead of decoding again.
    std::optional<Block> parse(Step& step, const Envelope& env, const Bytes& raw,
                               Block* decoded = nullptr) const;
    /// Accepts a parsed block whose requests were checked (see the rules):
    /// First — the first block of (e, j), accepted: SEEN it (only when
    /// `in_window`); Stored — stored only; Equivocation — another block of (e, j)
    /// was accepted (a fault is in `step`; the block is stored if certified).
    Accept accept(Step& step, const Envelope& env, const Bytes& raw, Block&& block,
                  const Digest& digest, bool in_window);
    bool holds(const Digest& digest) const { return blocks_.count(digest) != 0; }
    const StoredBlock* block(const Digest& digest) const;
    /// Remembers the digests of a stored block's requests (StoredBlock::request_digests).
    void note_request_digests(const Digest& digest, std::vector<Digest> request_digests);
    /// The digest of the block accepted for (e, j), if any.
    std::optional<Digest> accepted(Epoch e, NodeId j) const;

    // ---- SEEN and certificates -----------------------------------------------------
    /// Counts SEEN(e, j, d) from `sender` (decoded, j < n, e in the window). A
    /// second SEEN of that sender for another digest is a fault. Returns the
    /// certificate this SEEN completes, if it completes one.
    std::optional<Certificate> count_seen(Step& step, Epoch e, NodeId sender, const SeenBody& seen,
                                          const Signature& sig, const Bytes& raw);
    /// Counts the accepted block of (e, j) as j's vote for its digest (`sig` is
    /// the block envelope's signature; `raw` the envelope, kept only as evidence
    /// if j also SEENed another digest). Returns the certificate it completes.
    std::optional<Certificate> count_block(Step& step, Epoch e, NodeId j, const Digest& digest,
                                           const Signature& sig, const Bytes& raw);
    /// q signers, strictly increasing member ids, every vote valid
    /// (cert_signature_valid).
    bool cert_valid(const Certificate& cert) const;
    /// Records a verified certificate (and its Cert record): Known if it was
    /// held already, Conflict if another digest is certified for (e, j).
    Adopt adopt(Step& step, const Certificate& cert);
    const Certificate* cert(Epoch e, NodeId j) const;
    bool certified(Epoch e, NodeId j, const Digest& digest) const;
    /// Whether `sender`'s SEEN for `digest` as (e, j)'s block was counted: its
    /// sender holds that block.
    bool seen_by(Epoch e, NodeId j, NodeId sender, const Digest& digest) const;

    // ---- repair -----------------------------------------------------------------------
    void fetch_block(Step& step, Epoch e, const Certificate& cert, std::uint64_t now_ms);
    void fetch_cert(Step& step, Epoch e, NodeId j, std::uint64_t now_ms);
    /// Answers to FetchRequest(Block) and FetchRequest(Cert). A certificate is
    /// sealed (signed by this node) at each call: servable_cert's.
    std::optional<Bytes> block_envelope(const Digest& digest) const;
    std::optional<Bytes> cert_envelope(Epoch e, NodeId j) const;
    /// The certificate of (e, j) as it may leave this node: every signature
    /// checked. One this node formed may hold SEENs taken on their senders'
    /// connections without a check (verified_on_use, consensus/messages.h); if
    /// one of them does not verify, the certificate is rebuilt from the votes
    /// counted for its digest that do, or there is none to give (nullopt).
    std::optional<Certificate> servable_cert(Epoch e, NodeId j) const;

    // ---- recovery -----------------------------------------------------------------------
    /// A stored Block record (an accepted, certified or own block). Returns its
    /// digest, or nullopt if it does not decode.
    std::optional<Digest> restore_block(const Bytes& envelope);
    /// After a restart: the first stored block of (e, j) was the accepted one
    /// (a node may have accepted it without SEENing it yet: the join rule), and
    /// its envelope signature is j's vote.
    void restore_accepted(Epoch e, NodeId j, const Digest& digest);
    void restore_cert(const Certificate& cert);
    /// This node's own block of e (a Signed record): it was accepted, and it is
    /// this node's vote.
    void restore_own_block(Epoch e, const Digest& digest);
    /// This node's SEEN (a Signed record): it accepted that digest and counted itself.
    void restore_own_seen(Epoch e, const SeenBody& seen, const Signature& sig, const Bytes& raw);

    // ---- pruning and views ---------------------------------------------------------------
    /// Drops the per-epoch state of epochs with retire(e), and every stored block
    /// whose epoch has keep_block(e) false.
    void prune(const std::function<bool(Epoch)>& retire,
               const std::function<bool(Epoch)>& keep_block);
    std::size_t blocks() const { return blocks_.size(); }
    std::size_t bytes() const { return bytes_; }
    std::size_t epochs() const { return epochs_.size(); }
    std::size_t certs() const;
    std::size_t seen_votes() const;
    /// Stall report of epoch e, per proposer: accepted block held, SEEN senders
    /// counted (as a mask), certificate held and whether its block is held.
    std::string describe(Epoch e) const;

  private:
    struct EpochState {
        std::map<NodeId, Digest> accepted;  // first valid block per proposer (SEEN)
        std::map<std::pair<NodeId, NodeId>, std::pair<Digest, Bytes>> seen_from;  // (j, sender)
        std::map<std::pair<NodeId, Digest>, std::map<NodeId, Signature>> seen;
        std::map<NodeId, Certificate> certs;
        std::map<Digest, std::uint64_t> block_fetch_next_ms;
        std::uint64_t cert_fetch_next_ms = 0;
    };
    EpochState& state(Epoch e) { return epochs_[e]; }
    const EpochState* find(Epoch e) const;
    void store(Step* step, const Digest& d, const Bytes& env, const Signature& sig, Block&& block,
               Epoch e);
    /// Counts `sender`'s vote for d as (e, j)'s block (the first one per (j,
    /// sender) counts; another digest is a fault). `raw` is kept as evidence
    /// unless `block_vote` (then the stored block is the evidence).
    std::optional<Certificate> count_vote(Step& step, Epoch e, NodeId j, NodeId sender,
                                          const Digest& d, const Signature& sig, const Bytes& raw,
                                          bool block_vote);
    /// The accepted block of (e, j) as j's vote, at a restart (no faults).
    void restore_block_vote(Epoch e, NodeId j, const Digest& d);

    BroadcastParams params_;
    const CryptoSuite& crypto_;
    std::map<Digest, StoredBlock> blocks_;
    std::size_t bytes_ = 0;
    std::map<Epoch, EpochState> epochs_;
};

}  // namespace tob::consensus
