// The client ROUTER's connection count (daemon/client_connections.h): the limits
// in all and per address, and that disconnections give slots back.

#include "daemon/client_connections.h"

#include <gtest/gtest.h>

namespace tob::daemon {
namespace {

TEST(ClientConnections, refuses_the_connection_over_the_total_and_frees_slots_on_disconnect) {
    ClientConnections c(3, 3);
    EXPECT_TRUE(c.on_accepted(10, "10.0.0.1"));
    EXPECT_TRUE(c.on_accepted(11, "10.0.0.2"));
    EXPECT_TRUE(c.on_accepted(12, "10.0.0.3"));
    EXPECT_FALSE(c.on_accepted(13, "10.0.0.4"));  // the fourth
    EXPECT_EQ(c.open(), 3u);                      // a refused one is not held
    EXPECT_EQ(c.refused_pending(), 1u);
    c.on_disconnected(13);  // the refused one goes: it frees no slot
    EXPECT_EQ(c.open(), 3u);
    EXPECT_EQ(c.refused_pending(), 0u);
    EXPECT_FALSE(c.on_accepted(15, "10.0.0.5"));
    c.on_disconnected(15);
    c.on_disconnected(10);
    EXPECT_EQ(c.open(), 2u);
    EXPECT_TRUE(c.on_accepted(14, "10.0.0.4"));
}

TEST(ClientConnections, one_address_gets_at_most_its_share) {
    ClientConnections c(100, 2);
    EXPECT_TRUE(c.on_accepted(1, "10.0.0.9"));
    EXPECT_TRUE(c.on_accepted(2, "10.0.0.9"));
    EXPECT_FALSE(c.on_accepted(3, "10.0.0.9"));
    EXPECT_TRUE(c.on_accepted(4, "10.0.0.8"));  // another address is not charged
    c.on_disconnected(3);
    c.on_disconnected(1);
    EXPECT_EQ(c.open_from("10.0.0.9"), 1u);
    EXPECT_TRUE(c.on_accepted(5, "10.0.0.9"));
}

TEST(ClientConnections, unknown_and_reused_descriptors_keep_the_count_exact) {
    ClientConnections c(2, 2);
    c.on_disconnected(99);  // never accepted (the monitor started later)
    EXPECT_EQ(c.open(), 0u);
    EXPECT_TRUE(c.on_accepted(7, "a"));
    // Descriptor 7 reused by a new connection before its DISCONNECTED arrived:
    // the old entry goes, the count does not drift upwards.
    EXPECT_TRUE(c.on_accepted(7, "b"));
    EXPECT_EQ(c.open(), 1u);
    EXPECT_EQ(c.open_from("a"), 0u);
    EXPECT_EQ(c.open_from("b"), 1u);
    for (int i = 0; i < 1000; ++i) {  // churn: open and close, the count stays 1
        c.on_accepted(100 + i, "c");
        c.on_disconnected(100 + i);
    }
    EXPECT_EQ(c.open(), 1u);
    EXPECT_EQ(c.open_from("c"), 0u);
}

TEST(ClientConnections, reconcile_frees_the_slots_of_connections_whose_event_was_lost) {
    ClientConnections c(2, 2);
    EXPECT_TRUE(c.on_accepted(3, "a"));
    EXPECT_TRUE(c.on_accepted(4, "b"));
    EXPECT_FALSE(c.on_accepted(5, "c"));  // full; refused, pending its event
    // The DISCONNECTED events of 4 and 5 were dropped: only 3 is still open.
    EXPECT_EQ(c.reconcile([](int fd, const std::string&) { return fd == 3; }), 2u);
    EXPECT_EQ(c.open(), 1u);
    EXPECT_EQ(c.refused_pending(), 0u);
    EXPECT_EQ(c.open_from("b"), 0u);
    EXPECT_TRUE(c.on_accepted(6, "c"));
    // Nothing is forgotten while every descriptor is still open.
    EXPECT_EQ(c.reconcile([](int, const std::string&) { return true; }), 0u);
    EXPECT_EQ(c.open(), 2u);
}

}  // namespace
}  // namespace tob::daemon
