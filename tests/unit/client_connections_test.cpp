// The client ROUTER's connection slots (daemon/client_connections.h): the limits
// in all and per address, that disconnections give slots back, and who gives way
// when every slot is taken.

#include "daemon/client_connections.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <optional>

namespace tob::daemon {
namespace {

TEST(ClientConnections, a_newcomer_over_the_total_takes_an_unearned_slot_and_frees_come_back) {
    ClientConnections c(3, 3);
    EXPECT_TRUE(c.on_accepted(10, "10.0.0.1", 0).held);
    EXPECT_TRUE(c.on_accepted(11, "10.0.0.2", 0).held);
    EXPECT_TRUE(c.on_accepted(12, "10.0.0.2", 0).held);
    // The fourth: every slot is unearned; 10.0.0.2 holds the most, so its oldest
    // connection gives way.
    const auto fourth = c.on_accepted(13, "10.0.0.4", 0);
    EXPECT_TRUE(fourth.held);
    EXPECT_EQ(fourth.evicted, 11);
    EXPECT_EQ(c.open(), 3u);             // the evicted one is not held
    EXPECT_EQ(c.refused_pending(), 1u);  // until libzmq reports it gone
    EXPECT_EQ(c.open_from("10.0.0.2"), 1u);
    c.on_disconnected(11);
    EXPECT_EQ(c.open(), 3u);
    EXPECT_EQ(c.refused_pending(), 0u);
    // Now every address holds one: a swap would not even the shares out, so the
    // newcomer is refused rather than churning the slots.
    const auto fifth = c.on_accepted(14, "10.0.0.5", 0);
    EXPECT_FALSE(fifth.held);
    EXPECT_EQ(fifth.evicted, -1);
    c.on_disconnected(14);
    c.on_disconnected(13);
    EXPECT_EQ(c.open(), 2u);
    const auto again = c.on_accepted(15, "10.0.0.4", 0);
    EXPECT_TRUE(again.held);
    EXPECT_EQ(again.evicted, -1);  // a free slot: nobody gives way
}

TEST(ClientConnections, when_every_slot_is_earned_the_newcomer_is_refused) {
    ClientConnections c(2, 2, /*credit_ms=*/1000);
    ASSERT_TRUE(c.on_accepted(1, "a", 0).held);
    ASSERT_TRUE(c.on_accepted(2, "a", 0).held);
    c.on_frame(1, "r1");
    c.on_frame(2, "r2");
    c.credit("r1", 100);
    c.credit("r2", 100);
    EXPECT_EQ(c.earned(100), 2u);
    const auto late = c.on_accepted(3, "c", 500);
    EXPECT_FALSE(late.held);
    EXPECT_EQ(late.evicted, -1);
    EXPECT_EQ(c.open(), 2u);
    c.on_disconnected(3);
    // The credit runs out credit_ms after the last admitted request: r2 keeps
    // earning, r1 does not, but one unearned slot at "a" against none at "c" is
    // no uneven share: the newcomer is refused still.
    c.credit("r2", 900);
    EXPECT_EQ(c.earned(1100), 1u);
    EXPECT_FALSE(c.on_accepted(4, "c", 1100).held);
    c.on_disconnected(4);
    // Once r2's credit is gone too, "a" holds two unearned slots: r1's (older)
    // gives way.
    const auto next = c.on_accepted(5, "c", 2000);
    EXPECT_TRUE(next.held);
    EXPECT_EQ(next.evicted, 1);
}

TEST(ClientConnections, a_stranger_on_many_addresses_gives_way_to_a_client_and_cannot_evict_it) {
    // Ten addresses hold every slot with connections that never have a request
    // admitted; a client arrives from another address.
    ClientConnections c(50, 25);
    int fd = 100;
    for (int i = 0; i < 50; ++i)
        ASSERT_TRUE(c.on_accepted(fd++, "10.0.1." + std::to_string(i % 10), 0).held);
    const int client_fd = 7;
    const auto in = c.on_accepted(client_fd, "10.0.0.5", 0);
    ASSERT_TRUE(in.held);
    ASSERT_GE(in.evicted, 100);  // one of the stranger's
    // Before its first request is admitted, the stranger keeps reconnecting from
    // its addresses (about five slots each): nobody gives way to those (the shares
    // would not get more even), least of all the client's one connection.
    for (int i = 0; i < 500; ++i) {
        const auto s = c.on_accepted(fd++, "10.0.1." + std::to_string(i % 10), i);
        ASSERT_NE(s.evicted, client_fd) << "after " << i << " reconnections";
        if (s.evicted >= 0) c.on_disconnected(s.evicted);
        if (!s.held) c.on_disconnected(fd - 1);
    }
    EXPECT_EQ(c.open_from("10.0.0.5"), 1u);
    c.on_frame(client_fd, "client");
    c.credit("client", 600);
    // Earned: no number of the stranger's connections displaces it now. From
    // fresh addresses they take the slots of its own crowded ones until every
    // address holds one; then "10.0.0.5" would sort first among the heaviest.
    // A second connection of the client's address, unearned, may go; the earned
    // one may not.
    ASSERT_TRUE(c.on_accepted(8, "10.0.0.5", 600).held);
    for (int i = 0; i < 500; ++i) {
        const auto s = c.on_accepted(fd++, "10.0.2." + std::to_string(i), 600 + i);
        ASSERT_NE(s.evicted, client_fd);
        if (s.evicted >= 0) c.on_disconnected(s.evicted);
        if (!s.held) c.on_disconnected(fd - 1);
    }
    EXPECT_EQ(c.earned(1100), 1u);  // the client's, still held
    EXPECT_EQ(c.open(), 50u);
}

TEST(ClientConnections, one_address_gets_at_most_its_share) {
    ClientConnections c(100, 2);
    EXPECT_TRUE(c.on_accepted(1, "10.0.0.9", 0).held);
    EXPECT_TRUE(c.on_accepted(2, "10.0.0.9", 0).held);
    const auto third = c.on_accepted(3, "10.0.0.9", 0);
    EXPECT_FALSE(third.held);
    EXPECT_EQ(third.evicted, -1);
    EXPECT_TRUE(c.on_accepted(4, "10.0.0.8", 0).held);  // another address is not charged
    c.on_disconnected(3);
    c.on_disconnected(1);
    EXPECT_EQ(c.open_from("10.0.0.9"), 1u);
    EXPECT_TRUE(c.on_accepted(5, "10.0.0.9", 0).held);
}

TEST(ClientConnections, credit_names_the_connection_by_its_latest_routing_id) {
    ClientConnections c(1, 1);
    ASSERT_TRUE(c.on_accepted(5, "a", 0).held);
    c.credit("nobody", 0);  // an id never seen earns nothing
    EXPECT_EQ(c.earned(0), 0u);
    c.on_frame(5, "first");
    c.on_frame(5, "second");  // libzmq gave the connection another id
    c.credit("first", 0);
    EXPECT_EQ(c.earned(0), 0u);
    c.credit("second", 0);
    EXPECT_EQ(c.earned(0), 1u);
    // A descriptor reused by a new connection does not inherit the credit.
    ASSERT_TRUE(c.on_accepted(5, "b", 10).held);
    EXPECT_EQ(c.earned(10), 0u);
    c.credit("second", 10);
    EXPECT_EQ(c.earned(10), 0u);
}

TEST(ClientConnections, unknown_and_reused_descriptors_keep_the_count_exact) {
    ClientConnections c(2, 2);
    c.on_disconnected(99);  // never accepted (the monitor started later)
    EXPECT_EQ(c.open(), 0u);
    EXPECT_TRUE(c.on_accepted(7, "a", 0).held);
    // Descriptor 7 reused by a new connection before its DISCONNECTED arrived:
    // the old entry goes, the count does not drift upwards.
    EXPECT_TRUE(c.on_accepted(7, "b", 0).held);
    EXPECT_EQ(c.open(), 1u);
    EXPECT_EQ(c.open_from("a"), 0u);
    EXPECT_EQ(c.open_from("b"), 1u);
    for (int i = 0; i < 1000; ++i) {  // churn: open and close, the count stays 1
        c.on_accepted(100 + i, "c", 0);
        c.on_disconnected(100 + i);
    }
    EXPECT_EQ(c.open(), 1u);
    EXPECT_EQ(c.open_from("c"), 0u);
}

TEST(ClientConnections, reconcile_frees_the_slots_of_connections_whose_event_was_lost) {
    ClientConnections c(2, 1);
    EXPECT_TRUE(c.on_accepted(3, "a", 0).held);
    EXPECT_TRUE(c.on_accepted(4, "b", 0).held);
    EXPECT_FALSE(c.on_accepted(5, "b", 0).held);  // b's share; refused, pending its event
    // The DISCONNECTED events of 4 and 5 were dropped: only 3 is still open.
    EXPECT_EQ(c.reconcile([](int fd, const std::string&) { return fd == 3; }), 2u);
    EXPECT_EQ(c.open(), 1u);
    EXPECT_EQ(c.refused_pending(), 0u);
    EXPECT_EQ(c.open_from("b"), 0u);
    EXPECT_TRUE(c.on_accepted(6, "c", 0).held);
    // Nothing is forgotten while every descriptor is still open.
    EXPECT_EQ(c.reconcile([](int, const std::string&) { return true; }), 0u);
    EXPECT_EQ(c.open(), 2u);
}

// Replies (client_connections.h, "Replies"): what the node pushed to a connection
// less what the kernel took from it stays within the limit; a fake kernel here.
struct FakeKernel {
    std::map<int, std::uint64_t> taken;
    int asked = 0;
    std::optional<std::uint64_t> operator()(int fd) {
        ++asked;
        auto it = taken.find(fd);
        if (it == taken.end()) return std::nullopt;
        return it->second;
    }
};

// A held connection on `fd` that sent a frame as `routing_id`; the kernel has
// taken nothing from it yet.
void hold(ClientConnections& c, FakeKernel& k, int fd, const std::string& address,
          const std::string& routing_id) {
    k.taken[fd] = 0;
    ASSERT_TRUE(c.on_accepted(fd, address, 0).held);
    c.on_frame(fd, routing_id);
}

TEST(ClientConnections, replies_stop_at_the_limit_until_the_kernel_takes_them) {
    ClientConnections c(10, 10);
    FakeKernel k;
    hold(c, k, 7, "10.0.0.1", "r7");
    const std::uint64_t limit = 1000;
    int sent = 0;
    while (c.may_send("r7", 100, limit, std::ref(k)) && sent < 100) {
        c.sent("r7", 100);
        ++sent;
    }
    EXPECT_EQ(sent, 10);  // 10 x 100 bytes fill the limit; the 11th would pass it
    EXPECT_EQ(c.replies_held(std::ref(k)), 1000u);
    // The kernel takes 350 bytes: three more fit, not four.
    k.taken[7] = 350;
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(c.may_send("r7", 100, limit, std::ref(k))) << i;
        c.sent("r7", 100);
    }
    EXPECT_FALSE(c.may_send("r7", 100, limit, std::ref(k)));
    EXPECT_EQ(c.replies_held(std::ref(k)), 950u);
    // ZeroMQ's framing makes the kernel take more than the bodies: never below 0.
    k.taken[7] = 5000;
    EXPECT_TRUE(c.may_send("r7", 1000, limit, std::ref(k)));
    EXPECT_EQ(c.replies_held(std::ref(k)), 0u);
}

TEST(ClientConnections, replies_within_room_already_seen_do_not_ask_the_kernel) {
    ClientConnections c(10, 10);
    FakeKernel k;
    hold(c, k, 3, "10.0.0.1", "r3");
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(c.may_send("r3", 100, 1000, std::ref(k)));
        c.sent("r3", 100);
    }
    EXPECT_EQ(k.asked, 0);
    k.taken[3] = 500;
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(c.may_send("r3", 100, 1000, std::ref(k)));
        c.sent("r3", 100);
        k.taken[3] += 100;  // a reader that keeps up
    }
    EXPECT_LE(k.asked, 2);  // once the seen room ran out, not per reply
}

TEST(ClientConnections, each_connection_has_its_own_share_and_a_new_one_starts_empty) {
    ClientConnections c(10, 10);
    FakeKernel k;
    hold(c, k, 4, "10.0.0.1", "a");
    hold(c, k, 5, "10.0.0.2", "b");
    c.sent("a", 1000);
    EXPECT_FALSE(c.may_send("a", 1, 1000, std::ref(k)));    // the deaf one is full
    EXPECT_TRUE(c.may_send("b", 1000, 1000, std::ref(k)));  // the other is not
    // Descriptor 4 closes and is reused by a new connection: its count starts at 0.
    c.on_disconnected(4);
    hold(c, k, 4, "10.0.0.3", "a2");
    EXPECT_TRUE(c.may_send("a2", 1000, 1000, std::ref(k)));
    // A routing id the table does not know (its frames came before ACCEPTED was
    // read) is not metered; nor is one whose descriptor the kernel does not know.
    EXPECT_TRUE(c.may_send("unknown", 1u << 30, 1000, std::ref(k)));
    k.taken.erase(5);
    c.sent("b", 5000);
    EXPECT_TRUE(c.may_send("b", 1000, 1000, std::ref(k)));
}

}  // namespace
}  // namespace tob::daemon
