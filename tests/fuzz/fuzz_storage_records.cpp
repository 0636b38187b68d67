// libFuzzer target: the storage record decoder, NodeStorage::load_records()
// (daemon/storage.h: record key = 'r' ‖ epoch ‖ seq, value = type ‖ 16-byte
// checksum ‖ bytes), on a real RocksDB in a temporary directory (/dev/shm when
// present). Each input describes a store:
//
//   records, each: op u8, epoch (u8, or u64 BE when op & 0x80), len u16 BE, bytes
//     op & 0x08 = 0: appended through NodeStorage::append (type from op & 0x07,
//                    mapped onto the storable types Signed/Block/Cert/Proof/Commit)
//     op & 0x08 = 1: written raw: value = bytes as given (any type byte, any
//                    checksum), key = a well-formed record key, or (op & 0x20) that
//                    key plus one byte (malformed)
//   0xff, then damage to the appended records, 3 bytes each: index, offset, mask
//     (mask & 0x80: truncate the value to offset bytes, else XOR one byte)
//   the last two input bytes choose an epoch range for a second, partial load.
//
// Properties checked (a violation aborts = a finding):
//   P1 the records returned are exactly the undamaged appended records in the
//      range, in key order, byte for byte;
//      (to = the largest epoch means no upper bound, as in NodeStorage);
//   P2 when a damaged Signed record, or a raw record whose type byte is not a
//      re-fetchable type (Block, Cert, Proof, Commit) in a form the writer
//      produces, is in the store, the full load reports sign_log_ok = false: a
//      damaged sign-log record is never silently dropped (checked on inputs that
//      start from an undamaged store: the store is reopened every 16 inputs);
//   and no crash, exception or sanitizer report.

#include <rocksdb/db.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "daemon/storage.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using tob::consensus::DurableRecord;
using tob::consensus::Epoch;
using tob::daemon::NodeStorage;
namespace fs = std::filesystem;

struct Store {
    fs::path dir;
    std::unique_ptr<NodeStorage> storage;

    Store() {
        const char* base = fs::exists("/dev/shm") ? "/dev/shm" : std::getenv("TMPDIR");
        const fs::path root(base ? base : "/tmp");
        dir = root / ("tob-fuzz-storage-" + std::to_string(getpid()));
        // Stores left by earlier runs that crashed (a finding aborts the process).
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(root, ec)) {
            const std::string name = e.path().filename().string();
            if (name.rfind("tob-fuzz-storage-", 0) != 0) continue;
            const std::string pid = name.substr(17);
            if (!fs::exists(fs::path("/proc") / pid)) fs::remove_all(e.path(), ec);
        }
        fs::remove_all(dir);
        reopen();
    }
    ~Store() {
        storage.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void reopen() {
        storage.reset();
        fs::remove_all(dir);  // a fresh store: no marker, no range tombstones
        auto opened = NodeStorage::open(dir);
        if (!opened.ok()) tob::fuzz::finding("cannot open the fuzz store");
        storage = std::move(*opened.value);
    }
    void clear() {
        auto& db = storage->db_for_testing();
        auto st = db.DeleteRange(rocksdb::WriteOptions(), storage->records_cf_for_testing(),
                                 std::string(1, '\0'), std::string(1, 's'));
        if (!st.ok()) tob::fuzz::finding("cannot clear the fuzz store");
    }
};

struct Stored {
    std::string key;
    DurableRecord record;
    bool damaged = false;
};

constexpr DurableRecord::Type kStorable[] = {
    DurableRecord::Type::Signed, DurableRecord::Type::Block, DurableRecord::Type::Cert,
    DurableRecord::Type::Proof, DurableRecord::Type::Commit};

// A raw value's first byte that names a re-fetchable type in a form the writer
// produces: Block, Cert, Proof, Commit direct; Block and Proof also with the
// indirect flag (0x80) or the indirect and body-checksum flags (0xc0). Any other
// byte (Signed, Floor, a type byte no writer produces) must count as sign-log
// damage.
bool refetchable(std::uint8_t t) {
    if (t == 2 || t == 3 || t == 5 || t == 6) return true;
    return t == 0x82 || t == 0x85 || t == 0xc2 || t == 0xc5;
}

class Reader {
  public:
    Reader(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
    bool done() const { return pos_ >= n_; }
    std::uint8_t u8() { return pos_ < n_ ? d_[pos_++] : 0; }
    std::uint64_t be(int bytes) {
        std::uint64_t v = 0;
        for (int i = 0; i < bytes; ++i) v = (v << 8) | u8();
        return v;
    }
    tob::consensus::Bytes take(std::size_t len) {
        len = std::min(len, n_ - std::min(pos_, n_));
        tob::consensus::Bytes b(d_ + pos_, d_ + pos_ + len);
        pos_ += len;
        return b;
    }

  private:
    const std::uint8_t* d_;
    std::size_t n_, pos_ = 0;
};

void check_load(NodeStorage& s, const std::vector<Stored>& stored, Epoch from, Epoch to,
                bool expect_damage) {
    auto loaded = s.load_records(from, to);
    std::vector<const DurableRecord*> want;
    for (const auto& st : stored)
        if (!st.damaged && st.record.epoch >= from && (st.record.epoch < to || to == ~Epoch{0}))
            want.push_back(&st.record);
    if (loaded.records.size() != want.size())
        tob::fuzz::finding("load_records returned a different number of records");
    for (std::size_t i = 0; i < want.size(); ++i) {
        const auto& got = loaded.records[i];
        if (got.type != want[i]->type || got.epoch != want[i]->epoch || got.bytes != want[i]->bytes)
            tob::fuzz::finding("load_records returned a record that was not stored so");
    }
    if (expect_damage && loaded.sign_log_ok)
        tob::fuzz::finding("a damaged sign-log record was dropped with sign_log_ok = true");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Store store;
    store.clear();
    const bool was_damaged = store.storage->damaged();
    Reader in(data, size);
    std::vector<DurableRecord> appends;
    std::vector<std::pair<std::string, std::string>> raws;
    bool raw_damage = false;
    while (!in.done() && appends.size() + raws.size() < 64) {
        const std::uint8_t op = in.u8();
        if (op == 0xff) break;
        const Epoch epoch = (op & 0x80) ? in.be(8) : in.u8();
        const auto bytes = in.take(in.be(2));
        if (op & 0x08) {
            std::string key = NodeStorage::record_key(epoch, (1ull << 62) + raws.size());
            if (op & 0x20) key.push_back('x');
            raws.emplace_back(key, std::string(bytes.begin(), bytes.end()));
            raw_damage = raw_damage || bytes.empty() || !refetchable(bytes[0]);
        } else {
            appends.push_back(DurableRecord{kStorable[(op & 7) % 5], epoch, bytes});
        }
    }
    if (auto err = store.storage->append(appends)) tob::fuzz::finding("append failed");

    // What append stored, in key order, read back by plain slicing of the values.
    auto& db = store.storage->db_for_testing();
    auto* cf = store.storage->records_cf_for_testing();
    std::vector<Stored> stored;
    {
        std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            const std::string k = it->key().ToString(), v = it->value().ToString();
            if (k.size() != 17 || v.size() < 17) tob::fuzz::finding("append stored an odd record");
            Epoch e = 0;
            for (int i = 1; i <= 8; ++i) e = (e << 8) | static_cast<std::uint8_t>(k[i]);
            DurableRecord r{static_cast<DurableRecord::Type>(v[0]), e,
                            tob::consensus::Bytes(v.begin() + 17, v.end())};
            stored.push_back(Stored{k, std::move(r), false});
        }
    }
    bool sign_damage = raw_damage;
    while (!in.done() && !stored.empty()) {
        auto& st = stored[in.u8() % stored.size()];
        const std::uint8_t offset = in.u8(), mask = in.u8();
        if (st.damaged) continue;  // a second XOR could undo the first
        std::string v;
        if (!db.Get(rocksdb::ReadOptions(), cf, st.key, &v).ok() || v.empty()) continue;
        if (mask & 0x80) {
            if (offset >= v.size()) continue;
            v.resize(offset);
        } else {
            v[offset % v.size()] = static_cast<char>(v[offset % v.size()] ^ (mask | 1));
        }
        db.Put(rocksdb::WriteOptions(), cf, st.key, v);
        st.damaged = true;
        sign_damage = sign_damage || st.record.type == DurableRecord::Type::Signed;
    }
    for (const auto& [k, v] : raws) db.Put(rocksdb::WriteOptions(), cf, k, v);

    check_load(*store.storage, stored, 0, ~Epoch{0}, sign_damage && !was_damaged);
    const Epoch from = size >= 2 ? data[size - 2] % 64 : 0;
    const Epoch to = from + 1 + (size >= 1 ? data[size - 1] % 64 : 0);
    check_load(*store.storage, stored, from, to, false);
    // Once damaged, a store stays damaged (sign_log_ok false) until reopened without
    // its marker; reopening costs ~40 ms, so it happens every 16 inputs (and every 256
    // in any case, which also drops the range tombstones of clear()) and P2 is
    // checked only on inputs that start from a clean store.
    static int since_reopen = 0;
    ++since_reopen;
    if ((store.storage->damaged() && since_reopen >= 16) || since_reopen >= 256) {
        store.reopen();
        since_reopen = 0;
    }
    return 0;
}
