#include "cli/bench_verify.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "consensus/codec.h"
#include "crypto/sign.h"

namespace tob::cli {

namespace {

using Clock = std::chrono::steady_clock;
using consensus::Bytes;

std::string fixed(double v, int digits) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int run_verify_rate(std::uint32_t size, double seconds, bool json) {
    crypto::init();
    const crypto::SigningKey key = crypto::SigningKey::generate();
    consensus::Request request;
    request.client = key.public_key();
    request.nonce = 1;
    request.expires = 1'000'000;
    request.ops.push_back(
        consensus::Op{consensus::OpType::Put, Bytes(16, 'k'), Bytes(size, 7), std::nullopt});
    const Bytes payload = consensus::request_sign_payload(request);
    const crypto::Signature sig = key.sign(consensus::kRequestTag, payload);
    std::uint64_t count = 0;
    const double cpu_start = thread_cpu_seconds();
    const auto start = Clock::now();
    const auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    bool ok = true;
    while (Clock::now() < end) {
        for (int i = 0; i < 64; ++i)
            ok &= crypto::verify(key.public_key(), consensus::kRequestTag, payload, sig);
        count += 64;
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = thread_cpu_seconds() - cpu_start;
    if (!ok) {
        std::cerr << "tobctl bench: --verify-rate: a valid signature did not verify\n";
        return 1;
    }
    const double rate = static_cast<double>(count) / s;
    const double per_cpu_s = cpu > 0 ? static_cast<double>(count) / cpu : 0;
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (json) {
        std::cout << "{\"ed25519_verify_per_s\": " << fixed(rate, 1)
                  << ", \"ed25519_verify_per_cpu_s\": " << fixed(per_cpu_s, 1)
                  << ", \"threads\": 1, \"cores\": " << cores
                  << ", \"payload_bytes\": " << payload.size() << ", \"seconds\": " << fixed(s, 3)
                  << ", \"cpu_seconds\": " << fixed(cpu, 3) << "}\n";
    } else {
        std::cout << "ed25519 verify: " << fixed(rate, 0) << " per second on one thread, "
                  << fixed(per_cpu_s, 0) << " per CPU second (" << payload.size()
                  << "-byte payload, " << cores << " cores)\n";
    }
    return 0;
}

}  // namespace tob::cli
