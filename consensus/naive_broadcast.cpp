#include "consensus/naive_broadcast.h"

namespace tob::consensus {

bool NaiveNode::apply(const OpRequest& request) {
    if (applied_ids_.count(request.id)) return false;
    if (applied_ids_.size() >= kNaiveAppliedMax || request.op.size() > kNumericOpBytesMax) {
        ++dropped_;
        return false;
    }
    applied_ids_.insert(request.id);
    machine_.apply(request.op);  // a rejected op is rejected on every node alike
    log_.push_back(request);
    return true;
}

NaiveStep NaiveNode::handle_client(const OpRequest& request) {
    NaiveStep step;
    if (!apply(request)) return step;
    step.applied.push_back(request);
    step.broadcast.push_back(request);
    return step;
}

NaiveStep NaiveNode::handle_message(NodeId /*from*/, const OpRequest& request) {
    NaiveStep step;
    if (apply(request)) step.applied.push_back(request);
    return step;
}

}  // namespace tob::consensus
