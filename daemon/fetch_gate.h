#pragma once
// FetchGate: what a member's fetch requests may cost this node (issue 11,
// finding 3; docs/attacks.md, fetch_request_flood).
//
// Two limits per member:
//  - answers: a byte rate of fetch and archive answers (a TokenBucket in bytes,
//    charged after the core answered);
//  - requests: a rate of fetch requests admitted at all (a TokenBucket counting
//    requests).
// Both are checked at ingress, on the frame's kind alone (peek_envelope_kind,
// nothing decoded or hashed), before the frame is queued for the verification
// workers: a member whose answer bytes are used up, or who asks faster than the
// request rate, loses its fetch requests there, before any signature check,
// archive read or signature of an answer. Honest catch-up and repair ask a
// few requests per missing item per repair interval (200 ms), far below the rate.
//
// `from` is the member whose connection carried the frame (authenticated by
// Curve in production; index n collects every frame of an unknown sender).

#include <cstdint>
#include <vector>

#include "daemon/token_bucket.h"

namespace tob::daemon {

class FetchGate {
  public:
    enum class Verdict : std::uint8_t { Admit, NoAnswerBytes, OverRate };

    FetchGate(std::size_t members, std::uint64_t answer_bytes_per_s, std::uint64_t requests_per_s,
              std::uint64_t requests_burst) {
        for (std::size_t i = 0; i <= members; ++i) {
            answers_.emplace_back(answer_bytes_per_s, answer_bytes_per_s);
            requests_.emplace_back(requests_per_s, requests_burst);
        }
    }

    /// At ingress, for a frame that claims to be a fetch request from `from`.
    Verdict admit(std::size_t from, std::uint64_t now_ms) {
        const std::size_t i = index(from);
        if (!answers_[i].allow(now_ms)) return Verdict::NoAnswerBytes;
        if (!requests_[i].allow(now_ms)) return Verdict::OverRate;
        requests_[i].charge(1, now_ms);
        return Verdict::Admit;
    }
    /// On the loop, before the core answers a verified request of `sender`.
    bool may_answer(std::size_t sender, std::uint64_t now_ms) {
        return answers_[index(sender)].allow(now_ms);
    }
    /// The bytes of the answers the core gave `sender`.
    void charge_answer(std::size_t sender, std::uint64_t bytes, std::uint64_t now_ms) {
        answers_[index(sender)].charge(bytes, now_ms);
    }

  private:
    std::size_t index(std::size_t who) const {
        return who < answers_.size() - 1 ? who : answers_.size() - 1;
    }

    std::vector<TokenBucket> answers_;   // by member, bytes; [n]: unknown senders
    std::vector<TokenBucket> requests_;  // by member, requests; [n]: unknown senders
};

}  // namespace tob::daemon
