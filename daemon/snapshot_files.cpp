// SnapshotFiles: see daemon/snapshot_files.h for the format and the rules.

#include "daemon/snapshot_files.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>

#include "crypto/durable_file.h"

namespace tob::daemon {

namespace fs = std::filesystem;
using consensus::Bytes;
using consensus::ByteView;
using consensus::Epoch;

namespace {

constexpr char kMagic[8] = {'T', 'O', 'B', 'S', 'N', 'A', 'P', '1'};
constexpr char kTrailer[8] = {'T', 'O', 'B', 'S', 'N', 'E', 'N', 'D'};
constexpr char kViewMagic[8] = {'T', 'O', 'B', 'V', 'I', 'E', 'W', '1'};
constexpr char kViewTrailer[8] = {'T', 'O', 'B', 'V', 'E', 'N', 'D', '1'};
constexpr const char* kViewMetaFile = "TOBVIEW";
constexpr const char* kViewFamily = "kv";
constexpr std::uint32_t kMetaBytesMax = 64u << 20;
constexpr std::uint32_t kPrefixBytesMax = 64;

struct FileCloser {
    void operator()(std::FILE* f) const {
        if (f) std::fclose(f);
    }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

void put_u32(std::FILE* f, std::uint32_t v) {
    const unsigned char b[4] = {static_cast<unsigned char>(v >> 24),
                                static_cast<unsigned char>(v >> 16),
                                static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    std::fwrite(b, 1, 4, f);
}

bool get_u32(std::FILE* f, std::uint32_t& v) {
    unsigned char b[4];
    if (std::fread(b, 1, 4, f) != 4) return false;
    v = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
        b[3];
    return true;
}

bool get_bytes(std::FILE* f, std::uint32_t n, Bytes& out) {
    out.resize(n);
    return n == 0 || std::fread(out.data(), 1, n, f) == n;
}

std::string errno_text() { return std::strerror(errno); }

// Offsets of every bucket (and the end of the last) from the manifest.
std::optional<std::vector<std::uint64_t>> offsets_of(const consensus::HeldCheckpoint& held,
                                                     std::uint64_t first) {
    auto manifest = consensus::decode_manifest(held.manifest);
    if (!manifest) return std::nullopt;
    std::vector<std::uint64_t> out;
    std::uint64_t at = first;
    for (const auto& s : *manifest) {
        out.push_back(at);
        at += s.bytes + 8 * s.count;
    }
    out.push_back(at);
    return out;
}

// Write-behind for a snapshot file: the file is the node's whole state (tens of
// MB and more), and written with one fsync at the end its dirty pages went to the
// disk all at once, where every synced write of the nodes on that disk queued
// behind them. Measured at half load (4 nodes, one disk): the epoch after each
// checkpoint took 160-260 ms instead of about 33 ms, which put every request in
// flight then into the p90. Instead, each kChunk written is handed to the disk at
// once (SYNC_FILE_RANGE_WRITE) and the chunk before it is waited for, so at most
// two chunks are dirty and the final fsync finds little left. Durability is
// unchanged: the fsync, the rename and the directory's fsync still make the file.
class WriteBehind {
  public:
    static constexpr std::uint64_t kChunk = 1u << 20;
    explicit WriteBehind(int fd) : fd_(fd) {}
    std::uint64_t next() const { return started_ + kChunk; }
    // `upto` bytes are in the file (flushed from the stdio buffer).
    void wrote(std::uint64_t upto) {
        // Errors are ignored here: the final fsync reports them.
        (void)::sync_file_range(fd_, static_cast<off_t>(started_),
                                static_cast<off_t>(upto - started_), SYNC_FILE_RANGE_WRITE);
        if (started_ > waited_) {
            (void)::sync_file_range(
                fd_, static_cast<off_t>(waited_), static_cast<off_t>(started_ - waited_),
                SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
            waited_ = started_;
        }
        started_ = upto;
    }

  private:
    int fd_;
    std::uint64_t started_ = 0;  // handed to the disk up to here
    std::uint64_t waited_ = 0;   // on the disk up to here
};

// Reads the header; leaves `f` at the first entry.
std::optional<std::string> read_header(std::FILE* f, consensus::HeldCheckpoint& held, Bytes& meta) {
    char magic[8];
    if (std::fread(magic, 1, 8, f) != 8 || std::memcmp(magic, kMagic, 8) != 0) {
        return "not a tobd snapshot file (bad magic)";
    }
    std::uint32_t len = 0;
    if (!get_u32(f, len) || len > kMetaBytesMax || !get_bytes(f, len, meta)) {
        return "truncated header";
    }
    auto h = consensus::decode_held(meta);
    if (!h) return "malformed checkpoint description in the header";
    held = std::move(*h);
    return std::nullopt;
}

rocksdb::Slice slice(ByteView b) {
    return rocksdb::Slice(reinterpret_cast<const char*>(b.data()), b.size());
}
ByteView view_bytes(const rocksdb::Slice& s) {
    return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// The options of a view database: it is only ever scanned, so no block cache
// (the reads do not fill one anyway) and few open table files, which bounds the
// memory an open view holds to a few table readers.
rocksdb::DBOptions view_db_options() {
    rocksdb::DBOptions o;
    o.paranoid_checks = true;
    o.max_open_files = 16;
    o.keep_log_file_num = 1;
    o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
    o.allow_fallocate = false;
    return o;
}
rocksdb::ColumnFamilyOptions view_cf_options() {
    rocksdb::ColumnFamilyOptions cf;
    rocksdb::BlockBasedTableOptions table;
    table.no_block_cache = true;
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    return cf;
}

// TOBVIEW: the view's live key prefix and checkpoint description.
std::optional<std::string> write_view_meta(const fs::path& path, const Bytes& prefix,
                                           const Bytes& meta) {
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return path.string() + ": cannot create: " + errno_text();
    std::string out(kViewMagic, 8);
    auto u32 = [&](std::size_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
    };
    u32(prefix.size());
    out.append(prefix.begin(), prefix.end());
    u32(meta.size());
    out.append(meta.begin(), meta.end());
    out.append(kViewTrailer, 8);
    const bool ok = crypto::write_all(fd, out) && ::fsync(fd) == 0;
    const std::string why = errno_text();
    ::close(fd);
    if (!ok) return path.string() + ": write failed: " + why;
    return std::nullopt;
}

std::optional<std::string> read_view_meta(const fs::path& path, Bytes& prefix, Bytes& meta,
                                          consensus::HeldCheckpoint& held) {
    FilePtr f(std::fopen(path.c_str(), "rb"));
    if (!f) return path.string() + ": cannot open: " + errno_text();
    char magic[8];
    std::uint32_t len = 0;
    if (std::fread(magic, 1, 8, f.get()) != 8 || std::memcmp(magic, kViewMagic, 8) != 0)
        return path.string() + ": not a tobd view description (bad magic)";
    if (!get_u32(f.get(), len) || len > kPrefixBytesMax || !get_bytes(f.get(), len, prefix) ||
        !get_u32(f.get(), len) || len > kMetaBytesMax || !get_bytes(f.get(), len, meta))
        return path.string() + ": truncated";
    char trailer[8];
    if (std::fread(trailer, 1, 8, f.get()) != 8 || std::memcmp(trailer, kViewTrailer, 8) != 0 ||
        std::fgetc(f.get()) != EOF)
        return path.string() + ": bad trailer";
    auto h = consensus::decode_held(meta);
    if (!h) return path.string() + ": malformed checkpoint description";
    held = std::move(*h);
    return std::nullopt;
}

}  // namespace

struct SnapshotFiles::View {
    rocksdb::DB* db = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;  // default, kv
    ~View() {
        for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
        delete db;
    }
};

// ---- the format ----------------------------------------------------------------------

std::optional<std::string> SnapshotFiles::write_file(const fs::path& path, const Bytes& meta,
                                                     const Source& source) {
    const fs::path tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return tmp.string() + ": cannot create: " + errno_text();
    FilePtr f(::fdopen(fd, "wb"));
    if (!f) {
        ::close(fd);
        return tmp.string() + ": fdopen failed: " + errno_text();
    }
    std::setvbuf(f.get(), nullptr, _IOFBF, 1 << 20);
    std::fwrite(kMagic, 1, 8, f.get());
    put_u32(f.get(), static_cast<std::uint32_t>(meta.size()));
    std::fwrite(meta.data(), 1, meta.size(), f.get());
    WriteBehind behind(::fileno(f.get()));
    std::uint64_t written = 12 + meta.size();
    for (std::uint32_t b = 0; b < consensus::kStateBuckets; ++b) {
        source(b, [&](ByteView k, ByteView v) {
            put_u32(f.get(), static_cast<std::uint32_t>(k.size()));
            std::fwrite(k.data(), 1, k.size(), f.get());
            put_u32(f.get(), static_cast<std::uint32_t>(v.size()));
            std::fwrite(v.data(), 1, v.size(), f.get());
            written += 8 + k.size() + v.size();
            if (written >= behind.next()) {
                std::fflush(f.get());
                behind.wrote(written);
            }
            return true;
        });
    }
    std::fwrite(kTrailer, 1, 8, f.get());
    if (std::fflush(f.get()) != 0 || std::ferror(f.get()) || ::fsync(::fileno(f.get())) != 0) {
        const std::string why = errno_text();
        f.reset();
        ::unlink(tmp.c_str());
        return tmp.string() + ": write failed: " + why;
    }
    f.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = errno_text();
        ::unlink(tmp.c_str());
        return path.string() + ": rename failed: " + why;
    }
    if (auto error = crypto::fsync_dir(path.parent_path())) return *error;
    return std::nullopt;
}

std::optional<std::string> SnapshotFiles::read_file(const fs::path& path,
                                                    consensus::HeldCheckpoint& held,
                                                    const EntryFn& fn) {
    FilePtr f(std::fopen(path.c_str(), "rb"));
    if (!f) return path.string() + ": cannot open: " + errno_text();
    Bytes meta;
    if (auto problem = read_header(f.get(), held, meta)) return path.string() + ": " + *problem;
    auto manifest = consensus::decode_manifest(held.manifest);
    if (!manifest) return path.string() + ": malformed manifest";
    Bytes key, value;
    for (std::uint32_t b = 0; b < consensus::kStateBuckets; ++b) {
        for (std::uint64_t i = 0; i < (*manifest)[b].count; ++i) {
            std::uint32_t kl = 0, vl = 0;
            if (!get_u32(f.get(), kl) || kl > kMetaBytesMax || !get_bytes(f.get(), kl, key) ||
                !get_u32(f.get(), vl) || vl > (1u << 30) || !get_bytes(f.get(), vl, value)) {
                return path.string() + ": truncated in bucket " + std::to_string(b);
            }
            if (!fn(b, key, value)) return std::nullopt;
        }
    }
    char trailer[8];
    if (std::fread(trailer, 1, 8, f.get()) != 8 || std::memcmp(trailer, kTrailer, 8) != 0 ||
        std::fgetc(f.get()) != EOF) {
        return path.string() + ": bad trailer (sizes do not match the manifest)";
    }
    return std::nullopt;
}

// ---- the store ----------------------------------------------------------------------

SnapshotFiles::SnapshotFiles(fs::path dir) : dir_(std::move(dir)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    fs::permissions(dir_, fs::perms::owner_all, ec);
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
        const fs::path p = entry.path();
        if (p.extension() == ".tmp" || p.extension() == ".export") {
            fs::remove_all(p, ec);
            continue;
        }
        if (p.extension() == ".view") {
            consensus::HeldCheckpoint held;
            Bytes prefix, meta;
            if (read_view_meta(p / kViewMetaFile, prefix, meta, held)) continue;
            if (p.filename() != std::to_string(held.epoch) + ".view") continue;
            File file;
            file.meta = std::move(meta);
            file.view = true;
            file.prefix = std::move(prefix);
            files_[held.epoch] = std::move(file);
            continue;
        }
        if (p.extension() != ".snap") continue;
        FilePtr f(std::fopen(p.c_str(), "rb"));
        if (!f) continue;
        consensus::HeldCheckpoint held;
        Bytes meta;
        if (read_header(f.get(), held, meta)) continue;
        auto offsets = offsets_of(held, 12 + meta.size());
        if (!offsets || fs::file_size(p, ec) != offsets->back() + 8) continue;
        if (p.filename() != std::to_string(held.epoch) + ".snap") continue;
        files_[held.epoch] = File{std::move(meta), std::move(*offsets), false, {}, nullptr};
    }
    thread_ = std::thread([this] { run(); });
}

SnapshotFiles::~SnapshotFiles() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
        cancel_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (auto& job : queue_) {
        if (job.release) job.release();
    }
}

fs::path SnapshotFiles::file_of(Epoch id) const { return dir_ / (std::to_string(id) + ".snap"); }
fs::path SnapshotFiles::view_of(Epoch id) const { return dir_ / (std::to_string(id) + ".view"); }
fs::path SnapshotFiles::export_dir(Epoch id) const {
    return dir_ / (std::to_string(id) + ".export");
}

void SnapshotFiles::discard_export(Epoch id) {
    std::error_code ec;
    fs::remove_all(export_dir(id), ec);
}

void SnapshotFiles::note_failure(std::string what) {
    std::lock_guard lock(mutex_);
    ++failures_;
    last_failure_ = std::move(what);
}

void SnapshotFiles::import_async(
    Epoch id, Bytes meta, Bytes prefix,
    std::shared_ptr<const rocksdb::ExportImportFilesMetaData> exported) {
    Job job;
    job.id = id;
    job.meta = std::move(meta);
    job.exported = std::move(exported);
    job.prefix = std::move(prefix);
    enqueue(std::move(job));
}

void SnapshotFiles::write_async(Epoch id, Bytes meta, Source source,
                                std::function<void()> release) {
    enqueue(Job{id, std::move(meta), std::move(source), std::move(release), nullptr, {}});
}

void SnapshotFiles::enqueue(Job job) {
    std::vector<Job> dropped;
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(job));
        while (queue_.size() > 2) {  // only the newest matter
            dropped.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
    }
    for (auto& d : dropped) {
        if (d.release) d.release();
        if (d.exported) discard_export(d.id);
    }
    cv_.notify_all();
}

std::optional<std::string> SnapshotFiles::import_view(const Job& job) const {
    const fs::path tmp = view_of(job.id).string() + ".tmp";
    std::error_code ec;
    fs::remove_all(tmp, ec);
    rocksdb::Options options(view_db_options(), view_cf_options());
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, tmp.string(), &raw);
    if (!s.ok()) return tmp.string() + ": cannot create the view database: " + s.ToString();
    std::unique_ptr<rocksdb::DB> db(raw);
    fs::permissions(tmp, fs::perms::owner_all, ec);  // private, like the data dir
    rocksdb::ImportColumnFamilyOptions import;
    import.move_files = true;  // hard links: nothing of the state is copied
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    s = db->CreateColumnFamilyWithImport(view_cf_options(), kViewFamily, import, *job.exported,
                                         &handle);
    if (handle) db->DestroyColumnFamilyHandle(handle);
    if (s.ok()) s = db->Close();
    db.reset();
    std::optional<std::string> problem;
    if (!s.ok()) {
        problem = tmp.string() + ": importing the checkpoint's table files failed: " + s.ToString();
    } else {
        problem = write_view_meta(tmp / kViewMetaFile, job.prefix, job.meta);
    }
    if (!problem) problem = crypto::fsync_dir(tmp);
    if (!problem) {
        fs::rename(tmp, view_of(job.id), ec);
        if (ec) problem = view_of(job.id).string() + ": rename failed: " + ec.message();
    }
    if (!problem) problem = crypto::fsync_dir(dir_);
    if (problem) fs::remove_all(tmp, ec);
    return problem;
}

void SnapshotFiles::run() {
    // Below the event loop: writing a snapshot reads the whole state, and on a
    // machine with few cores it competed with the loop for them. A failure to
    // lower the priority only leaves it as it was.
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
    std::unique_lock lock(mutex_);
    for (;;) {
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        Job job = std::move(queue_.front());
        queue_.pop_front();
        writing_ = job.id;
        cancel_ = false;
        lock.unlock();
        if (job.exported) {
            auto problem = import_view(job);
            lock.lock();
            finish_view(job, problem, cancel_);
        } else {
            std::atomic<bool> cancelled{false};
            auto source = [&](std::uint32_t b, const consensus::kv::ScanFn& fn) {
                {
                    std::lock_guard check(mutex_);
                    if (cancel_) cancelled = true;
                }
                if (!cancelled) job.source(b, fn);
            };
            auto problem = write_file(file_of(job.id), job.meta, source);
            job.release();
            lock.lock();
            finish_file(job, problem, cancelled || cancel_);
        }
        writing_.reset();
        cv_.notify_all();
    }
}

void SnapshotFiles::finish_file(Job& job, const std::optional<std::string>& problem,
                                bool cancelled) {
    std::error_code ec;
    auto h = consensus::decode_held(job.meta);
    auto offsets = h ? offsets_of(*h, 12 + job.meta.size()) : std::nullopt;
    if (cancelled) {
        fs::remove(file_of(job.id), ec);
    } else if (problem) {
        ++failures_;
        last_failure_ = *problem;
    } else if (!offsets || fs::file_size(file_of(job.id), ec) != offsets->back() + 8) {
        ++failures_;
        last_failure_ = file_of(job.id).string() + ": sizes do not match its manifest";
        fs::remove(file_of(job.id), ec);
    } else {
        files_[job.id] = File{std::move(job.meta), std::move(*offsets), false, {}, nullptr};
    }
}

void SnapshotFiles::finish_view(Job& job, const std::optional<std::string>& problem,
                                bool cancelled) {
    std::error_code ec;
    fs::remove_all(export_dir(job.id), ec);
    if (cancelled) {
        fs::remove_all(view_of(job.id), ec);
    } else if (problem) {
        ++failures_;
        last_failure_ = *problem;
    } else {
        File file;
        file.meta = std::move(job.meta);
        file.view = true;
        file.prefix = std::move(job.prefix);
        files_[job.id] = std::move(file);
    }
}

void SnapshotFiles::remove(Epoch id) {
    std::vector<Job> dropped;
    {
        std::lock_guard lock(mutex_);
        if (writing_ == id) cancel_ = true;
        for (auto it = queue_.begin(); it != queue_.end();) {
            if (it->id == id) {
                dropped.push_back(std::move(*it));
                it = queue_.erase(it);
            } else {
                ++it;
            }
        }
        if (auto it = files_.find(id); it != files_.end()) {
            std::error_code ec;
            // An open view stays readable by a scan in progress (open files
            // outlive their names) and closes with its last reference.
            if (it->second.view) {
                fs::remove_all(view_of(id), ec);
            } else {
                fs::remove(file_of(id), ec);
            }
            files_.erase(it);
        }
        std::erase_if(resume_, [id](const auto& r) { return std::get<0>(r.first) == id; });
    }
    for (auto& job : dropped) {
        if (job.release) job.release();
        if (job.exported) discard_export(job.id);
    }
}

std::vector<Epoch> SnapshotFiles::complete() const {
    std::lock_guard lock(mutex_);
    std::vector<Epoch> out;
    for (const auto& [id, f] : files_) out.push_back(id);
    return out;
}

std::optional<Bytes> SnapshotFiles::meta(Epoch id) const {
    std::lock_guard lock(mutex_);
    auto it = files_.find(id);
    if (it == files_.end()) return std::nullopt;
    return it->second.meta;
}

std::optional<fs::path> SnapshotFiles::path(Epoch id) const {
    std::lock_guard lock(mutex_);
    auto it = files_.find(id);
    if (it == files_.end()) return std::nullopt;
    return it->second.view ? view_of(id) : file_of(id);
}

bool SnapshotFiles::is_view(Epoch id) const {
    std::lock_guard lock(mutex_);
    auto it = files_.find(id);
    return it != files_.end() && it->second.view;
}

bool SnapshotFiles::scan_view(Epoch id, std::uint32_t b, ByteView after,
                              const consensus::kv::ScanFn& fn) const {
    std::shared_ptr<View> open;
    Bytes prefix;
    {
        std::lock_guard lock(mutex_);
        auto it = files_.find(id);
        if (it == files_.end()) return false;
        const File& file = it->second;
        if (!file.open) {
            std::vector<rocksdb::ColumnFamilyDescriptor> families = {
                {rocksdb::kDefaultColumnFamilyName, view_cf_options()},
                {kViewFamily, view_cf_options()}};
            auto v = std::make_shared<View>();
            const rocksdb::Status s = rocksdb::DB::OpenForReadOnly(
                view_db_options(), view_of(id).string(), families, &v->handles, &v->db);
            if (!s.ok()) return false;
            file.open = std::move(v);
        }
        open = file.open;
        prefix = file.prefix;
    }
    return scan_bucket(open->db, open->handles[1], nullptr, prefix, b, after, fn);
}

bool SnapshotFiles::scan_bucket(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                const rocksdb::Snapshot* snapshot, ByteView prefix, std::uint32_t b,
                                ByteView after, const consensus::kv::ScanFn& fn) {
    Bytes lo(prefix.begin(), prefix.end()), hi = lo;
    lo.push_back(static_cast<std::uint8_t>(b >> 8));
    lo.push_back(static_cast<std::uint8_t>(b));
    hi.push_back(static_cast<std::uint8_t>((b + 1) >> 8));
    hi.push_back(static_cast<std::uint8_t>(b + 1));
    const std::size_t head = lo.size();
    Bytes start = lo;
    start.insert(start.end(), after.begin(), after.end());
    rocksdb::ReadOptions options;
    options.snapshot = snapshot;
    options.fill_cache = false;
    const rocksdb::Slice upper = slice(hi);
    options.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(options, cf));
    for (it->Seek(slice(start)); it->Valid(); it->Next()) {
        const ByteView key = view_bytes(it->key()).subspan(head);
        if (!after.empty() && std::equal(key.begin(), key.end(), after.begin(), after.end())) {
            continue;
        }
        if (!fn(key, view_bytes(it->value()))) break;
    }
    return it->status().ok();
}

bool SnapshotFiles::scan(Epoch id, std::uint32_t b, ByteView after,
                         const consensus::kv::ScanFn& fn) const {
    if (b >= consensus::kStateBuckets) return false;
    if (is_view(id)) return scan_view(id, b, after, fn);
    std::uint64_t at = 0, end = 0;
    {
        std::lock_guard lock(mutex_);
        auto it = files_.find(id);
        if (it == files_.end()) return false;
        at = it->second.offsets[b];
        end = it->second.offsets[b + 1];
        auto r = resume_.find({id, b, Bytes(after.begin(), after.end())});
        if (!after.empty() && r != resume_.end()) at = r->second;
    }
    FilePtr f(std::fopen(file_of(id).c_str(), "rb"));
    if (!f || std::fseek(f.get(), static_cast<long>(at), SEEK_SET) != 0) return false;
    Bytes key, value, accepted;  // accepted: the last key fn took
    std::uint64_t accepted_end = at;
    while (at < end) {
        std::uint32_t kl = 0, vl = 0;
        if (!get_u32(f.get(), kl) || !get_bytes(f.get(), kl, key) || !get_u32(f.get(), vl) ||
            !get_bytes(f.get(), vl, value)) {
            return true;  // a damaged file ends the bucket early; the peer will notice
        }
        at += 8 + kl + vl;
        if (!after.empty() &&
            !std::lexicographical_compare(after.begin(), after.end(), key.begin(), key.end())) {
            continue;
        }
        if (!fn(key, value)) {
            // The next chunk of this bucket starts after `accepted`: remember where.
            if (!accepted.empty()) {
                std::lock_guard lock(mutex_);
                if (resume_.size() > 1024) resume_.clear();
                resume_[{id, b, accepted}] = accepted_end;
            }
            break;
        }
        accepted = key;
        accepted_end = at;
    }
    return true;
}

std::uint64_t SnapshotFiles::failures() const {
    std::lock_guard lock(mutex_);
    return failures_;
}

std::string SnapshotFiles::last_failure() const {
    std::lock_guard lock(mutex_);
    return last_failure_;
}

void SnapshotFiles::wait_idle() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return queue_.empty() && !writing_; });
}

}  // namespace tob::daemon
