// The memory budget (daemon/memory_budget.h): every bound derived from
// memory_max_mb fits in it, scales with it, and a budget that cannot hold one
// frame an honest peer may send is refused with what to change.

#include "daemon/memory_budget.h"

#include <gtest/gtest.h>

#include <variant>

namespace tob::daemon {
namespace {

MemoryBudget derive_ok(const MemoryBudgetInput& in) {
    auto b = derive_memory_budget(in);
    if (auto* why = std::get_if<std::string>(&b)) ADD_FAILURE() << *why;
    return std::get<MemoryBudget>(b);
}

TEST(MemoryBudget, every_daemon_bound_together_fits_in_memory_max_mb) {
    for (std::uint32_t n : {4u, 7u}) {
        MemoryBudgetInput in;
        in.n = n;
        const MemoryBudget b = derive_ok(in);
        EXPECT_EQ(b.total_bytes, 2048ull << 20);
        // ZeroMQ: HWM x frame over every peer pipe of the SUB and the member ROUTER.
        const std::uint64_t zmq = std::uint64_t(b.member_recv_hwm) * b.frame_max * 2 * (n - 1);
        EXPECT_EQ(zmq, b.zmq_receive_bytes);
        EXPECT_LE(zmq, b.total_bytes / 4);
        EXPECT_GE(b.member_recv_hwm, 2);  // libzmq's ROUTER stalls at 1
        // Every member's queue holds at least one frame; all of them and the
        // clients' queue fit in a quarter.
        EXPECT_GE(b.verify_member_bytes, b.frame_max);
        EXPECT_LE(b.verify_member_bytes * (n - 1) + b.verify_clients_bytes, b.total_bytes / 4);
        EXPECT_GE(b.verify_client_each_bytes, b.client_frame_max);
        // The daemon's shares add up to at most 59/64 of the budget (1/4 + 1/8 +
        // 1/8 + 1/8 + 1/64 + 1/64 + 1/128 + 1/256 + 1/256, the send side's 1/32
        // + 1/32 + 1/16, or 1/8 where two frames per DEALER take that, and the
        // client replies' 1/32, or 1/16 where one largest reply each takes that).
        std::uint64_t daemon = b.verify_member_bytes * (n - 1);
        for (const auto& nb : b.named())
            if (nb.name != "verify_queue_members") daemon += nb.bytes;
        EXPECT_LE(daemon, b.total_bytes / 64 * 59);
        // Client replies: every connection can be sent one reply of the largest size.
        EXPECT_GE(b.client_send_each_bytes, b.client_reply_max);
        EXPECT_GE(b.client_reply_max, in.request_output_bytes_max + 512u);
        EXPECT_EQ(b.client_send_bytes, b.client_send_each_bytes * in.client_connections_max);
        EXPECT_LE(b.client_send_bytes, b.total_bytes / 16);
        // The send side: a peer that reads nothing holds at most its pipes' frames
        // and its outbox.
        const std::uint64_t peers = n - 1;
        EXPECT_EQ(b.zmq_send_bytes,
                  peers * (std::uint64_t(b.pub_send_hwm) * (b.pub_frame_max + kFrameOverhead) +
                           std::uint64_t(b.peer_send_hwm) * b.frame_max));
        EXPECT_LE(b.zmq_send_bytes, b.total_bytes / 32 + b.total_bytes / 8);
        EXPECT_LE(b.outboxes_bytes, b.total_bytes / 32);
        EXPECT_EQ(b.outboxes_bytes, b.outbox_bytes * peers);
        EXPECT_LE(b.pub_frame_max, kPubFrameMax);
        EXPECT_GE(b.pub_send_hwm, static_cast<int>(kPubSendHwmMin));
        EXPECT_GE(b.peer_send_hwm, 2);
        // Entry counts come from bytes.
        EXPECT_LE(b.verify_cache_generation * 2 * kDigestEntryBytes, b.verify_cache_bytes);
        EXPECT_LE(b.failed_entries * kFailedEntryBytes, b.failed_cache_bytes);
        EXPECT_LE(b.pending_max * kPendingEntryBytes, b.pending_bytes);
        EXPECT_LE(b.client_rate_entries * kClientRateEntryBytes, b.client_rate_bytes);
        EXPECT_GE(b.client_rate_entries, 1000u);  // room for many clients at once
    }
}

TEST(MemoryBudget, bounds_scale_with_memory_max_mb) {
    MemoryBudgetInput small, large;
    small.memory_max_mb = 1024;
    large.memory_max_mb = 4096;
    const MemoryBudget a = derive_ok(small), b = derive_ok(large);
    EXPECT_EQ(b.verify_clients_bytes, 4 * a.verify_clients_bytes);
    EXPECT_EQ(b.verify_cache_bytes, 4 * a.verify_cache_bytes);
    EXPECT_GT(b.member_recv_hwm, a.member_recv_hwm);
    EXPECT_GT(b.failed_entries, a.failed_entries);
}

TEST(MemoryBudget, a_receive_high_water_mark_of_one_frame_is_refused) {
    // 1 GiB held one 16 MiB frame per pipe for 7 members (HWM 1), and the member
    // ROUTER then stopped delivering at all; the default (2 GiB) holds two.
    MemoryBudgetInput in;
    in.n = 7;
    EXPECT_EQ(derive_ok(in).member_recv_hwm, 2);
    in.memory_max_mb = 1024;
    auto b = derive_memory_budget(in);
    ASSERT_TRUE(std::holds_alternative<std::string>(b));
    EXPECT_NE(std::get<std::string>(b).find("cannot hold two frames"), std::string::npos)
        << std::get<std::string>(b);
}

TEST(MemoryBudget, a_pub_queue_too_short_for_a_burst_of_broadcasts_is_refused) {
    // Small frames make every other bound fit in 64 MiB; the PUB's queue to each
    // of 3 peers would still hold only 10 broadcasts of 64 KiB in its 32nd.
    MemoryBudgetInput in;
    in.memory_max_mb = 64;
    in.message_bytes_max = 64u << 10;
    in.request_bytes_max = 16u << 10;
    in.request_output_bytes_max = 16u << 10;
    auto b = derive_memory_budget(in);
    ASSERT_TRUE(std::holds_alternative<std::string>(b));
    EXPECT_NE(std::get<std::string>(b).find("cannot queue 16 broadcasts"), std::string::npos)
        << std::get<std::string>(b);
    in.memory_max_mb = 128;
    EXPECT_GE(derive_ok(in).pub_send_hwm, 16);
}

TEST(MemoryBudget, a_budget_that_cannot_hold_one_frame_per_peer_is_refused) {
    MemoryBudgetInput in;
    in.n = 16;  // 30 pipes of two 16 MiB frames do not fit in 512 MiB
    auto b = derive_memory_budget(in);
    ASSERT_TRUE(std::holds_alternative<std::string>(b));
    EXPECT_NE(std::get<std::string>(b).find("raise memory_max_mb"), std::string::npos);
    in.message_bytes_max = 4u << 20;  // smaller frames fit
    EXPECT_TRUE(std::holds_alternative<MemoryBudget>(derive_memory_budget(in)));
}

TEST(MemoryBudget, client_replies_that_cannot_each_get_one_largest_reply_are_refused) {
    MemoryBudgetInput in;
    in.memory_max_mb = 1024;
    // At 1 GiB a 32nd split 50 ways is less than one reply of 1 MiB: one reply each.
    EXPECT_EQ(derive_ok(in).client_send_each_bytes, (1ull << 20) + kClientReplyOverhead);
    MemoryBudgetInput large;
    large.memory_max_mb = 4096;
    EXPECT_EQ(derive_ok(large).client_send_each_bytes, (4096ull << 20) / 32 / 50);
    // 1 GiB, 50 connections, 4 MiB outputs: 50 x 4 MiB is more than a 16th.
    in.request_output_bytes_max = 4u << 20;
    auto b = derive_memory_budget(in);
    ASSERT_TRUE(std::holds_alternative<std::string>(b));
    EXPECT_NE(std::get<std::string>(b).find("request_output_bytes_max"), std::string::npos);
    // Fewer connections make room.
    in.client_connections_max = 10;
    EXPECT_EQ(derive_ok(in).client_send_each_bytes, (4ull << 20) + kClientReplyOverhead);
}

}  // namespace
}  // namespace tob::daemon
