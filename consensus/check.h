#pragma once
// TOB_CHECK(condition, why): an invariant of our own code. Unlike assert() it stays
// on in release builds (NDEBUG): a broken invariant in the core means its state can
// no longer be trusted, and continuing could sign or apply something wrong, so the
// process stops with the file, line, condition and reason on stderr. Peer
// misbehaviour is never checked this way: it is a Fault (consensus/step.h).
//
// Use it where the cost is small (a comparison, a lookup that happened anyway);
// the message is a fixed string so that a failing check allocates nothing.

#include <cstdio>
#include <cstdlib>

namespace tob::consensus {

[[noreturn]] inline void check_failed(const char* condition, const char* why, const char* file,
                                      int line) {
    std::fprintf(stderr, "%s:%d: invariant violated: %s (%s)\n", file, line, why, condition);
    std::fflush(stderr);
    std::abort();
}

}  // namespace tob::consensus

#define TOB_CHECK(condition, why)                                                              \
    do {                                                                                       \
        if (!(condition)) ::tob::consensus::check_failed(#condition, why, __FILE__, __LINE__); \
    } while (false)
