// sd_notify wrapper (daemon/notify.h): the test plays systemd's part with its own
// AF_UNIX datagram socket and reads what the Notifier sends.

#include "daemon/notify.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/test_util.h"

namespace tob::daemon {
namespace {

namespace fs = std::filesystem;

// Saves and restores the notify variables around each test.
class NotifyTest : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}) {
            const char* value = std::getenv(name);
            saved_.push_back({name, value != nullptr, value != nullptr ? value : ""});
            ::unsetenv(name);
        }
    }
    void TearDown() override {
        if (fd_ >= 0) ::close(fd_);
        for (const auto& var : saved_) {
            if (var.set) {
                ::setenv(var.name.c_str(), var.value.c_str(), 1);
            } else {
                ::unsetenv(var.name.c_str());
            }
        }
    }

    // Binds the "service manager" socket and points NOTIFY_SOCKET at it.
    void listen() {
        const std::string path = (dir_ / "notify.sock").string();
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(fd_, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        ASSERT_LT(path.size(), sizeof addr.sun_path);
        path.copy(addr.sun_path, path.size());
        ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        timeval timeout{2, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    }

    // Next datagram, or "" after the 2 s receive timeout.
    std::string receive() {
        char buffer[4096];
        const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
        return got > 0 ? std::string(buffer, static_cast<std::size_t>(got)) : std::string();
    }

    // Nothing more waiting.
    bool drained() {
        char buffer[16];
        return ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT) < 0;
    }

    struct Saved {
        std::string name;
        bool set;
        std::string value;
    };
    std::vector<Saved> saved_;
    test_util::TempDir tmp_{"tobd-notify-test"};
    const fs::path dir_ = tmp_.path();
    int fd_ = -1;
};

TEST_F(NotifyTest, messages_arrive_in_order_with_the_protocol_text) {
    listen();
    ::setenv("WATCHDOG_USEC", "2000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);

    Notifier notifier;
    EXPECT_TRUE(notifier.enabled());
    ASSERT_TRUE(notifier.watchdog_interval().has_value());
    EXPECT_EQ(*notifier.watchdog_interval(), std::chrono::seconds(2));

    notifier.ready();
    notifier.status("epoch 12, peers 3/3, pool 40");
    notifier.watchdog();
    notifier.status("two\nlines");
    notifier.reloading();
    notifier.ready_again();
    notifier.stopping();

    EXPECT_EQ(receive(), "READY=1");
    EXPECT_EQ(receive(), "STATUS=epoch 12, peers 3/3, pool 40");
    EXPECT_EQ(receive(), "WATCHDOG=1");
    EXPECT_EQ(receive(), "STATUS=two lines");  // a newline would start a new assignment
    const std::string reloading = receive();
    EXPECT_EQ(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << reloading;
    const std::string usec = reloading.substr(reloading.find('=', 12) + 1);
    EXPECT_FALSE(usec.empty());
    EXPECT_EQ(usec.find_first_not_of("0123456789"), std::string::npos) << usec;
    EXPECT_EQ(receive(), "READY=1");
    EXPECT_EQ(receive(), "STOPPING=1");
    EXPECT_TRUE(drained());
    // The environment is left in place (a later Notifier, or a child, still sees it).
    EXPECT_NE(std::getenv("NOTIFY_SOCKET"), nullptr);
}

TEST_F(NotifyTest, the_watchdog_of_another_process_is_not_ours) {
    listen();
    ::setenv("WATCHDOG_USEC", "2000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
    Notifier notifier;
    EXPECT_TRUE(notifier.enabled());
    EXPECT_FALSE(notifier.watchdog_interval().has_value());

    ::unsetenv("WATCHDOG_PID");
    ::unsetenv("WATCHDOG_USEC");
    EXPECT_FALSE(Notifier().watchdog_interval().has_value());
}

TEST_F(NotifyTest, outside_systemd_every_call_is_a_no_op) {
    Notifier notifier;
    EXPECT_FALSE(notifier.enabled());
    EXPECT_FALSE(notifier.watchdog_interval().has_value());
    notifier.ready();
    notifier.status("x");
    notifier.watchdog();
    notifier.reloading();
    notifier.ready_again();
    notifier.stopping();
    EXPECT_FALSE(notifier.send("READY=1"));

    // A socket that exists but was not named in NOTIFY_SOCKET receives nothing.
    listen();
    ::unsetenv("NOTIFY_SOCKET");
    Notifier still_off;
    still_off.ready();
    EXPECT_TRUE(drained());
}

}  // namespace
}  // namespace tob::daemon
