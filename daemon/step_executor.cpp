// StepExecutor: persist, then send, then report (step_executor.h).

#include "daemon/step_executor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "daemon/high_water.h"

namespace tob::daemon {

using namespace tob::consensus;

StepExecutor::StepExecutor(Options options, NodeStorage& storage, Transport& transport,
                           NodeMetrics& metrics, ByzantineShim* byzantine, CommittedFn on_committed)
    : options_(std::move(options)),
      storage_(storage),
      transport_(transport),
      metrics_(metrics),
      byzantine_(byzantine),
      on_committed_(std::move(on_committed)) {}

void StepExecutor::failpoint(const char* where) {
    if (options_.crash_at == 0 || ++failpoints_passed_ < options_.crash_at) return;
    spdlog::critical("fail-point {} reached at {}: abort()", options_.crash_at, where);
    spdlog::default_logger()->flush();
    std::abort();
}

bool StepExecutor::execute(Step step, std::uint64_t now_ms) {
    if (byzantine_) byzantine_->rewrite(step, now_ms);
    const bool durable = !step.persist.empty() || storage_.has_staged();
    if (!persist(step, durable)) return false;
    send(step, durable);
    for (const auto& c : step.committed) on_committed_(c);
    report(step);
    return true;
}

bool StepExecutor::persist(const Step& step, bool durable) {
    // (1) every record of the step, one batch (synced if a message depends on it)
    if (durable) {
        failpoint("before the records batch");
        if (auto err = storage_.append(step.persist, step.needs_sync())) {
            spdlog::critical(
                "cannot write durable records ({}): stopping without sending (fail-stop)", *err);
            fatal_ = 3;
            return false;
        }
    }
    // (2) the mark file, after the signatures it covers are in the sign-log and
    // before any of them leaves (consensus/sign_log.h: a crash between the two
    // leaves signatures above the mark, never a mark above the signatures)
    if (durable) failpoint("before the high-water mark");
    Epoch mark = high_water_;
    for (const auto& rec : step.persist)
        if (rec.type == DurableRecord::Type::HighWater) mark = std::max(mark, rec.epoch);
    if (mark > high_water_) {
        if (auto err = write_high_water(options_.mark_path, mark)) {
            spdlog::critical(
                "cannot raise the signing high-water mark ({}): stopping without sending "
                "(fail-stop)",
                *err);
            fatal_ = 3;
            return false;
        }
        high_water_ = mark;
        metrics_.high_water(mark);
    }
    return true;
}

void StepExecutor::send(const Step& step, bool durable) {
    // (3) messages, only after (1) and (2)
    if (durable) failpoint("after the records batch");
    std::size_t sent = 0;
    for (const auto& m : step.messages) {
        if (durable && ++sent == step.messages.size() / 2 + 1) failpoint("mid-send");
        metrics_.message_out(m.kind);
        if (m.to) {
            if (*m.to != options_.self) transport_.send_to(*m.to, m.envelope);
        } else if (sent_point_to_point(m.kind)) {
            // Agreement bundles are taken only from the sender's own authenticated
            // connection, and a SEEN's signature is checked only when it comes
            // from elsewhere: never on the flood plane (consensus/messages.h).
            transport_.send_to_each(m.envelope);
        } else {
            transport_.broadcast(m.envelope);
        }
    }
}

void StepExecutor::report(const Step& step) {
    // (5) faults and alarms
    for (const auto& f : step.faults) {
        metrics_.fault(to_string(f.kind), f.culprit);
        spdlog::warn("fault by node {}: {}: {}", f.culprit, to_string(f.kind), f.detail);
    }
    for (const auto& a : step.alarms) spdlog::critical("ALARM (node halts): {}", a);
    if (!step.alarms.empty()) alarmed_ = true;
}

}  // namespace tob::daemon
