#include "comm/nccl_group.hpp"

#include <dlfcn.h>

#include <mutex>

#include "core/error.hpp"
#include "core/lib.hpp"
#include "core/log.hpp"

namespace ds::comm {

namespace {

struct TableCache {
    std::mutex mutex;
    bool probed = false;
    const ds_backend_comm_v1_t* table = nullptr;
    std::string why;
};

TableCache& cache() {
    static TableCache* c = new TableCache();
    return *c;
}

ds_status_t status_of(int rc) {
    switch (rc) {
        case DS_BACKEND_COMM_OK: return DS_OK;
        case DS_BACKEND_COMM_TIMEOUT: return DS_ERR_COMM_TIMEOUT;
        case DS_BACKEND_COMM_PEER: return DS_ERR_COMM_PEER;
        case DS_BACKEND_COMM_ABORTED: return DS_ABORTED;
        case DS_BACKEND_COMM_INVALID: return DS_ERR_INVALID_ARG;
        case DS_BACKEND_COMM_NO_DEVICE: return DS_ERR_NO_DEVICE;
        default: return DS_ERR_COMM;
    }
}

}  // namespace

const ds_backend_comm_v1_t* NcclGroup::table(std::string* why) {
    TableCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (!c.probed) {
        c.probed = true;
        const ds_backend_v1_t* be = lib::cuda();
        if (!be) {
            c.why = "the CUDA backend is not loaded (" + lib::cuda_status() + ")";
        } else {
            // The comm table lives in the module that served the device table: find that module by
            // address and look the second entry point up in it (RTLD_NOLOAD: no second copy, and the
            // reference taken here keeps it loaded for as long as communicators may use it).
            Dl_info info;
            void* handle = nullptr;
            if (dladdr(reinterpret_cast<const void*>(be), &info) && info.dli_fname)
                handle = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_LOCAL);
            auto entry = handle ? reinterpret_cast<ds_backend_comm_entry_fn>(dlsym(handle, "ds_backend_comm_entry")) : nullptr;
            const ds_backend_comm_v1_t* t = entry ? entry() : nullptr;
            if (!t) {
                c.why = "the CUDA backend module was built without NCCL (no ds_backend_comm_entry)";
            } else if (t->api_version != DS_BACKEND_COMM_API_VERSION || t->struct_size < sizeof(ds_backend_comm_v1_t)) {
                c.why = format("the CUDA backend's comm table has API version %u (size %u); this library needs version %d",
                               t->api_version, t->struct_size, DS_BACKEND_COMM_API_VERSION);
            } else {
                c.table = t;
                int32_t v = 0;
                t->version(&v);
                log(DS_LOG_INFO, "NCCL %d available through the CUDA backend", v);
            }
        }
    }
    if (!c.table && why) *why = c.why;
    return c.table;
}

void NcclGroup::check(int rc, const char* what) {
    if (rc == DS_BACKEND_COMM_OK) return;
    fail(status_of(rc), "NCCL %s: %s", what, t_->last_error());
}

void NcclGroup::finish(const char* what) {
    if (!deferred_) wait_all(what);
}

void NcclGroup::wait_all(const char* what) { check(t_->wait(comm_, timeout_ms_), what); }

std::unique_ptr<NcclGroup> NcclGroup::create(int32_t rank, int32_t size, int32_t dev, Store& store, const std::string& key,
                                             int64_t timeout_ms) {
    std::string why;
    const ds_backend_comm_v1_t* t = table(&why);
    if (!t) fail(DS_ERR_UNSUPPORTED, "NCCL is not available: %s", why.c_str());
    // Two ids: one for the rendezvous communicator, one for the data communicator (comm_init).
    std::vector<char> id(2 * DS_BACKEND_COMM_UNIQUE_ID_BYTES);
    if (rank == 0) {
        for (int i = 0; i < 2; ++i)
            if (int rc = t->get_unique_id(id.data() + i * DS_BACKEND_COMM_UNIQUE_ID_BYTES))
                fail(status_of(rc), "ncclGetUniqueId: %s", t->last_error());
        store.set(key, id);
    } else {
        id = store.get(key, timeout_ms);
        if (id.size() != 2 * DS_BACKEND_COMM_UNIQUE_ID_BYTES)
            fail(DS_ERR_COMM, "the NCCL unique ids in the store have %zu bytes, expected %d", id.size(),
                 2 * DS_BACKEND_COMM_UNIQUE_ID_BYTES);
    }
    void* comm = nullptr;
    if (int rc = t->comm_init(dev, size, rank, id.data(), timeout_ms, &comm))
        fail(status_of(rc), "ncclCommInitRank (rank %d of %d on cuda:%d): %s", rank, size, dev, t->last_error());
    return std::unique_ptr<NcclGroup>(new NcclGroup(t, comm, dev, timeout_ms));
}

NcclGroup::~NcclGroup() {
    if (comm_ && t_->comm_destroy(comm_) != DS_BACKEND_COMM_OK)
        log(DS_LOG_WARN, "ncclCommDestroy: %s", t_->last_error());
}

void NcclGroup::abort() noexcept {
    if (comm_) t_->comm_abort(comm_);
}

void NcclGroup::all_reduce(const void* send, void* recv, uint64_t count, int32_t dtype, int32_t op) {
    check(t_->all_reduce(comm_, send, recv, count, dtype, op), "all_reduce");
    finish("all_reduce");
}

void NcclGroup::broadcast(void* buf, uint64_t count, int32_t dtype, int32_t root) {
    check(t_->broadcast(comm_, buf, buf, count, dtype, root), "broadcast");
    finish("broadcast");
}

void NcclGroup::reduce(const void* send, void* recv, uint64_t count, int32_t dtype, int32_t op, int32_t root) {
    check(t_->reduce(comm_, send, recv, count, dtype, op, root), "reduce");
    finish("reduce");
}

void NcclGroup::all_gather(const void* send, void* recv, uint64_t send_count, int32_t dtype) {
    check(t_->all_gather(comm_, send, recv, send_count, dtype), "all_gather");
    finish("all_gather");
}

void NcclGroup::reduce_scatter(const void* send, void* recv, uint64_t recv_count, int32_t dtype, int32_t op) {
    check(t_->reduce_scatter(comm_, send, recv, recv_count, dtype, op), "reduce_scatter");
    finish("reduce_scatter");
}

void NcclGroup::all_to_all(const void* send, void* recv, uint64_t count_per_rank, int32_t dtype) {
    check(t_->all_to_all(comm_, send, recv, count_per_rank, dtype), "all_to_all");
    finish("all_to_all");
}

void NcclGroup::p2p(const std::vector<P2POp>& ops) {
    if (ops.empty()) return;
    check(t_->group_start(), "group_start");
    int rc = DS_BACKEND_COMM_OK;
    for (const P2POp& o : ops) {
        rc = o.send ? t_->send(comm_, o.buf, o.count, o.dtype, o.peer) : t_->recv(comm_, o.buf, o.count, o.dtype, o.peer);
        if (rc != DS_BACKEND_COMM_OK) break;
    }
    int end_rc = t_->group_end(comm_);
    check(rc, "send/recv");
    check(end_rc, "group_end");
    finish("send/recv");
}

}  // namespace ds::comm
