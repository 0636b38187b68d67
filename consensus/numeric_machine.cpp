#include "consensus/numeric_machine.h"

#include <limits>

namespace tob::consensus {

namespace {

Int128 abs128(Int128 v) { return v < 0 ? -v : v; }

Int128 gcd128(Int128 a, Int128 b) {
    a = abs128(a);
    b = abs128(b);
    while (b != 0) {
        const Int128 r = a % b;
        a = b;
        b = r;
    }
    return a;
}

bool fits64(Int128 v) {
    return v >= std::numeric_limits<std::int64_t>::min() &&
           v <= std::numeric_limits<std::int64_t>::max();
}

std::string to_string128(Int128 v) {
    if (v == 0) return "0";
    const bool negative = v < 0;
    std::string digits;
    for (Int128 x = abs128(v); x > 0; x /= 10) digits.insert(digits.begin(), char('0' + x % 10));
    return negative ? "-" + digits : digits;
}

}  // namespace

std::optional<Rational> Rational::make(Int128 num, Int128 den) {
    if (den == 0) return std::nullopt;
    if (den < 0) {
        num = -num;
        den = -den;
    }
    const Int128 g = num == 0 ? den : gcd128(num, den);
    num /= g;
    den /= g;
    if (!fits64(num) || !fits64(den)) return std::nullopt;
    return Rational{static_cast<std::int64_t>(num), static_cast<std::int64_t>(den)};
}

std::string Rational::str() const {
    if (den == 1) return std::to_string(num);
    return std::to_string(num) + "/" + std::to_string(den);
}

std::optional<std::string> Rational::decimal() const {
    // den = 2^a * 5^b  =>  num/den = num * 2^(k-a) * 5^(k-b) / 10^k with k = max(a, b).
    std::int64_t rest = den;
    int twos = 0, fives = 0;
    while (rest % 2 == 0) {
        rest /= 2;
        ++twos;
    }
    while (rest % 5 == 0) {
        rest /= 5;
        ++fives;
    }
    if (rest != 1) return std::nullopt;
    const int k = twos > fives ? twos : fives;
    if (k > 30) return std::nullopt;  // keeps the scaled value inside 128 bits
    Int128 scaled = num;
    for (int i = twos; i < k; ++i) scaled *= 2;
    for (int i = fives; i < k; ++i) scaled *= 5;
    if (k == 0) return to_string128(scaled);
    const bool negative = scaled < 0;
    std::string digits = to_string128(abs128(scaled));
    if (digits.size() <= static_cast<std::size_t>(k))
        digits.insert(0, static_cast<std::size_t>(k) + 1 - digits.size(), '0');
    digits.insert(digits.size() - static_cast<std::size_t>(k), ".");
    return negative ? "-" + digits : digits;
}

std::optional<NumericOp> NumericOp::parse(std::string_view text) {
    if (text.size() < 2 || text.size() > kNumericOpBytesMax) return std::nullopt;
    NumericOp op;
    switch (text[0]) {
        case '+':
            op.kind = NumericOpKind::Add;
            break;
        case '-':
            op.kind = NumericOpKind::Sub;
            break;
        case '*':
            op.kind = NumericOpKind::Mul;
            break;
        case '/':
            op.kind = NumericOpKind::Div;
            break;
        default:
            return std::nullopt;
    }
    const std::string_view digits = text.substr(1);
    if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
    std::int64_t value = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
        if (value > kNumericOperandMax) return std::nullopt;
    }
    op.operand = value;
    return op;
}

std::string NumericOp::str() const {
    const char sign[] = {'+', '-', '*', '/'};
    return sign[static_cast<int>(kind)] + std::to_string(operand);
}

std::optional<Rational> NumericOp::apply_to(const Rational& x) const {
    const Int128 n = x.num, d = x.den, k = operand;
    switch (kind) {
        case NumericOpKind::Add:
            return Rational::make(n + k * d, d);
        case NumericOpKind::Sub:
            return Rational::make(n - k * d, d);
        case NumericOpKind::Mul:
            return Rational::make(n * k, d);
        case NumericOpKind::Div:
            return Rational::make(n, d * k);  // k == 0: make() refuses
    }
    return std::nullopt;
}

bool NumericMachine::apply(std::string_view op) {
    const auto parsed = NumericOp::parse(op);
    const auto next = parsed ? parsed->apply_to(state_) : std::nullopt;
    if (!next) {
        ++rejected_;
        return false;
    }
    state_ = *next;
    ++applied_;
    return true;
}

}  // namespace tob::consensus
