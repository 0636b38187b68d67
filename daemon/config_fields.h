#pragma once
// The keys of the cluster file's [limits] and [protocol] tables, with the member
// each one sets: the one list that both the parser (config.cpp) and the writer
// (config_write.cpp) walk, so a key cannot be read without being written or the
// reverse. Internal to daemon/config*.cpp.

#include <cstdint>
#include <string_view>

#include "daemon/config.h"

namespace tob::daemon::config_fields {

struct LimitField {
    std::string_view name;
    std::uint32_t consensus::Limits::*member;
};
inline constexpr LimitField kLimitFields[] = {
    {"message_bytes_max", &consensus::Limits::message_bytes_max},
    {"block_bytes_max", &consensus::Limits::block_bytes_max},
    {"block_requests_max", &consensus::Limits::block_requests_max},
    {"request_ops_max", &consensus::Limits::request_ops_max},
    {"request_bytes_max", &consensus::Limits::request_bytes_max},
    {"key_bytes_max", &consensus::Limits::key_bytes_max},
    {"value_bytes_max", &consensus::Limits::value_bytes_max},
    {"cert_signatures_max", &consensus::Limits::cert_signatures_max},
    {"fetch_items_max", &consensus::Limits::fetch_items_max},
    {"aba_bundle_max", &consensus::Limits::aba_bundle_max},
    {"batch_requests_max", &consensus::Limits::batch_requests_max},
    {"request_output_bytes_max", &consensus::Limits::request_output_bytes_max},
    {"epoch_output_bytes_max", &consensus::Limits::epoch_output_bytes_max},
};

struct ProtocolField {
    std::string_view name;
    std::uint32_t ProtocolParams::*member;
    std::uint32_t max;
};
inline constexpr ProtocolField kProtocolFields[] = {
    {"block_timer_ms", &ProtocolParams::block_timer_ms, 60'000},
    {"window", &ProtocolParams::window, 1024},
    {"checkpoint_interval", &ProtocolParams::checkpoint_interval, 1'000'000},
    {"checkpoint_retention", &ProtocolParams::checkpoint_retention, 100'000'000},
    {"aged_epochs", &ProtocolParams::aged_epochs, 1'000'000},
    {"request_expiry_max_epochs", &ProtocolParams::request_expiry_max_epochs, 1'000'000'000},
};

}  // namespace tob::daemon::config_fields
