#pragma once
// The lecture's numeric state machine: one exact rational number, changed by
// requests such as "/2", "+1", "*3", "-1".
//
// Why it exists. State machine replication rests on determinism: start every
// replica in the same state, feed it the same requests in the same order, and
// every replica goes through the same states. The smallest example that shows
// why the *order* matters is arithmetic that does not commute: from 1,
// "/2" then "+1" gives 3/2, "+1" then "/2" gives 1. docs/protocols.md walks
// from this example to the total-order broadcast of docs/protocol.md, and the
// lecture protocols (naive_broadcast.h, sync_tob.h) replicate this machine.
//
// Exactness. The state is a fraction of two int64s kept in lowest terms with a
// positive denominator, so "1.5" on one node and "1.5" on another are the same
// bits — floating point would make equality depend on rounding, and a replica
// comparison must never depend on rounding. Intermediate products are computed
// in 128 bits; a result that does not fit in int64 is *rejected*: the state
// stays as it was and the request counts as rejected. Rejection is a pure
// function of (state, op), so every replica that applies the same sequence
// rejects the same requests.
//
// Input bounds. An op is at most kNumericOpBytesMax bytes: one of + - * /
// followed by a decimal operand in [0, kNumericOperandMax] (no sign, no
// spaces, no leading zeros except "0" itself). "/0" parses but is rejected
// when applied. Anything else is malformed and rejected the same way.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tob::consensus {

// A 128-bit integer for exact intermediate products (a GCC/Clang extension;
// __extension__ keeps -Wpedantic quiet about it).
__extension__ typedef __int128 Int128;

inline constexpr std::size_t kNumericOpBytesMax = 16;
inline constexpr std::int64_t kNumericOperandMax = 1'000'000'000;

/// num/den in lowest terms, den > 0.
struct Rational {
    std::int64_t num = 0;
    std::int64_t den = 1;

    /// num/den reduced; nullopt if den == 0 or the reduced form does not fit.
    static std::optional<Rational> make(Int128 num, Int128 den);
    static Rational integer(std::int64_t v) { return {v, 1}; }

    /// "3/2", or "1" when the denominator is 1.
    std::string str() const;
    /// Exact decimal ("1.5", "-0.125") when den has no prime factor other than
    /// 2 and 5, otherwise nullopt (e.g. 1/3).
    std::optional<std::string> decimal() const;

    bool operator==(const Rational&) const = default;
};

enum class NumericOpKind : std::uint8_t { Add, Sub, Mul, Div };

struct NumericOp {
    NumericOpKind kind = NumericOpKind::Add;
    std::int64_t operand = 0;

    /// Parses "+1", "/2", ...; nullopt for anything outside the grammar above.
    static std::optional<NumericOp> parse(std::string_view text);
    std::string str() const;
    /// The result of this op on `x`, or nullopt (division by zero, overflow).
    std::optional<Rational> apply_to(const Rational& x) const;
};

class NumericMachine {
  public:
    explicit NumericMachine(Rational initial = Rational::integer(1)) : state_(initial) {}

    /// Applies `op` in place. False (and no change) if it is malformed, divides
    /// by zero or overflows; the same on every replica.
    bool apply(std::string_view op);

    const Rational& state() const { return state_; }
    std::uint64_t applied() const { return applied_; }
    std::uint64_t rejected() const { return rejected_; }

  private:
    Rational state_;
    std::uint64_t applied_ = 0;
    std::uint64_t rejected_ = 0;
};

}  // namespace tob::consensus
