// Communication: communicators, collectives, point to point, work handles, the comms logger.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "capi/guard.hpp"
#include "capi/handles.hpp"
#include "comm/comm.hpp"
#include "comm/reduce.hpp"
#include "core/dtype.hpp"
#include "core/lib.hpp"
#include "core/options.hpp"

struct ds_comm {
    static constexpr uint32_t kMagic = ds::kMagicComm;
    static constexpr const char* kTypeName = "ds_comm_t";
    std::shared_ptr<ds::comm::Comm> c;
};

struct ds_work {
    static constexpr uint32_t kMagic = ds::kMagicWork;
    static constexpr const char* kTypeName = "ds_work_t";
    std::shared_ptr<ds::comm::WorkState> w;
};

using ds::capi::check_handle;
using ds::capi::check_out;
using ds::capi::guard;
using ds::comm::Op;
using ds::comm::OpKind;

namespace {

char* dup_string(const std::string& s) {
    char* out = static_cast<char*>(std::malloc(s.size() + 1));
    if (!out) throw std::bad_alloc();
    std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

// Calls into the public config getters leave their own messages in the thread's last error: keep
// the caller's message instead.
class LastErrorKeeper {
public:
    LastErrorKeeper() : saved_(ds::last_error()) {}
    ~LastErrorKeeper() { ds::set_last_error(saved_); }

private:
    std::string saved_;
};

// The comms_logger block through the public getters (the config module owns the tree).
ds::comm::LogConfig read_logger(const ds_config_t* cfg) {
    ds::comm::LogConfig lc;
    if (!cfg) return lc;
    LastErrorKeeper keep;
    auto flag = [&](const char* path, bool* out) {
        int32_t v = 0;
        ds_status_t st = ds_config_get_bool(cfg, path, &v);
        if (st == DS_OK) {
            *out = v != 0;
        } else if (st == DS_ERR_INVALID_HANDLE) {
            ds::fail(DS_ERR_INVALID_HANDLE, "opts->config=%p is not a live ds_config_t", static_cast<const void*>(cfg));
        } else if (st != DS_ERR_NOT_FOUND) {
            ds::fail(st, "opts->config: reading %s: %s", path, ds::last_error());
        }
    };
    flag("comms_logger.enabled", &lc.enabled);
    flag("comms_logger.verbose", &lc.verbose);
    flag("comms_logger.prof_all", &lc.prof_all);
    flag("comms_logger.debug", &lc.debug);
    int64_t n = 0;
    if (ds_config_get_count(cfg, "comms_logger.prof_ops", &n) == DS_OK) {
        for (int64_t i = 0; i < n; ++i) {
            std::string path = "comms_logger.prof_ops[" + std::to_string(i) + "]";
            char buf[256];
            uint64_t len = 0;
            if (ds_config_get_str(cfg, path.c_str(), buf, sizeof buf, &len) == DS_OK) lc.prof_ops.emplace_back(buf);
        }
    }
    return lc;
}

ds::comm::Comm& comm_of(const ds_comm_t* comm) { return *check_handle(comm, "comm")->c; }

// A tensor argument of a collective: live, contiguous, of a dtype the backends carry.
const ds::Tensor& tensor_arg(const ds_tensor_t* t, const char* name) {
    const ds::Tensor& x = check_handle(t, name)->t;
    if (!ds::comm::comm_dtype_ok(x.dtype))
        ds::fail(DS_ERR_UNSUPPORTED, "%s has dtype %s; collectives take f32, f16, bf16, f64, i8, u8, i32 and i64", name,
                 ds::dtype_name(x.dtype));
    if (!x.contiguous()) ds::fail(DS_ERR_INVALID_ARG, "%s is not contiguous; collectives need contiguous tensors", name);
    return x;
}

void same_kind(const ds::Tensor& a, const char* an, const ds::Tensor& b, const char* bn) {
    if (a.dtype != b.dtype)
        ds::fail(DS_ERR_INVALID_ARG, "%s has dtype %s but %s has dtype %s", bn, ds::dtype_name(b.dtype), an, ds::dtype_name(a.dtype));
    if (!(a.dev == b.dev))
        ds::fail(DS_ERR_DEVICE_MISMATCH, "%s is on %s:%d but %s is on %s:%d", bn, b.dev.type == DS_DEV_CUDA ? "cuda" : "cpu",
                 b.dev.index, an, a.dev.type == DS_DEV_CUDA ? "cuda" : "cpu", a.dev.index);
}

void check_red(int32_t op) {
    if (op < DS_REDUCE_SUM || op > DS_REDUCE_PROD)
        ds::fail(DS_ERR_INVALID_ARG, "op=%d is not a ds_reduce_op (0 SUM, 1 AVG, 2 MAX, 3 MIN, 4 PROD)", op);
}

void check_root(const ds::comm::Comm& c, int32_t root, const char* name) {
    if (root < 0 || root >= c.size())
        ds::fail(DS_ERR_INVALID_ARG, "%s=%d is outside [0, world_size=%d)", name, root, c.size());
}

Op make_op(OpKind kind, const char* caller, const ds::Tensor& a) {
    Op op;
    op.kind = kind;
    op.caller = caller;
    op.a = a;
    op.dtype = a.dtype;
    op.dev_type = a.dev.type;
    op.dev_index = a.dev.index;
    op.count = static_cast<uint64_t>(a.numel());
    return op;
}

// The outcome of a finished work as the calling thread sees it.
ds_status_t result_of(ds::comm::WorkState& w) {
    ds_status_t st;
    std::string msg;
    {
        std::lock_guard<std::mutex> lock(w.m);
        st = w.status;
        msg = w.message;
    }
    if (st < 0) ds::fail(st, "%s", msg.c_str());
    if (st == DS_ABORTED) ds::set_last_error(msg);
    return st;
}

// Hand out a work handle, or wait here for a synchronous call.
ds_status_t finish(const std::shared_ptr<ds::comm::WorkState>& w, ds_work_t** work) {
    if (work) {
        *work = ds::capi::publish(new ds_work{w});
        return DS_OK;
    }
    w->wait_for(-1);
    return result_of(*w);
}

// The common path of every collective: submit (async when work != NULL) and finish.
ds_status_t run(ds::comm::Comm& c, Op op, ds_work_t** work) {
    auto w = c.submit(std::move(op), work != nullptr);
    return finish(w, work);
}

ds_status_t p2p(const char* fn, OpKind kind, ds_comm_t* comm, const ds_tensor_t* t, int32_t peer, int32_t tag,
                       ds_work_t** work) {
    return guard(fn, [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        const ds::Tensor& x = tensor_arg(t, "t");
        const char* pname = kind == OpKind::Send ? "dst" : "src";
        check_root(c, peer, pname);
        if (peer == c.rank())
            ds::fail(DS_ERR_INVALID_ARG, "%s=%d is this rank; send and recv take another rank", pname, peer);
        if (tag < 0) ds::fail(DS_ERR_INVALID_ARG, "tag=%d must be >= 0", tag);
        Op o = make_op(kind, fn, x);
        o.peer = peer;
        o.tag = tag;
        return run(c, std::move(o), work);
    });
}

}  // namespace

extern "C" {

void ds_comm_options_init(ds_comm_options_t* opts) {
    if (!opts) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->abi_version = DS_ABI_VERSION;
    opts->rank = DS_UNSET_I32;
    opts->world_size = DS_UNSET_I32;
    opts->local_rank = DS_UNSET_I32;
    opts->local_world_size = DS_UNSET_I32;
    opts->master_port = DS_UNSET_I32;
    opts->timeout_ms = DS_UNSET_I32;
    opts->backend = DS_COMM_BACKEND_AUTO;
    opts->check_mismatch = DS_UNSET_I32;
}

ds_status_t ds_comm_create(const ds_comm_options_t* opts, ds_comm_t** out) {
    return guard("ds_comm_create", [&] {
        check_out(out, "out");
        *out = nullptr;
        ds::lib::ensure_init();
        ds_comm_options_t o = ds::read_options(opts, ds_comm_options_init, "opts");
        ds::comm::Settings s = ds::comm::resolve_settings(o);
        ds::comm::LogConfig lc = read_logger(o.config);
        auto c = ds::comm::Comm::create(s, lc);
        *out = ds::capi::publish(new ds_comm{std::move(c)});
    });
}

void ds_comm_destroy(ds_comm_t* comm) { ds::capi::retire(comm); }

ds_status_t ds_comm_abort(ds_comm_t* comm) {
    return guard("ds_comm_abort", [&] { comm_of(comm).abort(); });
}

ds_status_t ds_comm_get_rank(const ds_comm_t* comm, int32_t* out) {
    return guard("ds_comm_get_rank", [&] {
        check_out(out, "out");
        *out = comm_of(comm).rank();
    });
}

ds_status_t ds_comm_get_world_size(const ds_comm_t* comm, int32_t* out) {
    return guard("ds_comm_get_world_size", [&] {
        check_out(out, "out");
        *out = comm_of(comm).size();
    });
}

ds_status_t ds_comm_get_local_rank(const ds_comm_t* comm, int32_t* out) {
    return guard("ds_comm_get_local_rank", [&] {
        check_out(out, "out");
        *out = comm_of(comm).local_rank();
    });
}

ds_status_t ds_comm_query_info(const ds_comm_t* comm, char** out_json) {
    return guard("ds_comm_query_info", [&] {
        check_out(out_json, "out_json");
        *out_json = nullptr;
        *out_json = dup_string(comm_of(comm).info_json());
    });
}

ds_status_t ds_comm_split(ds_comm_t* parent, int32_t color, int32_t key, ds_comm_t** out) {
    return guard("ds_comm_split", [&]() -> ds_status_t {
        check_out(out, "out");
        *out = nullptr;
        ds::comm::Comm& c = comm_of(parent);
        Op op;
        op.kind = OpKind::Split;
        op.caller = "ds_comm_split";
        op.color = color < 0 ? DS_COMM_SPLIT_NONE : color;
        op.key = key;
        auto w = c.submit(std::move(op), false);
        w->wait_for(-1);
        ds_status_t st = result_of(*w);
        if (st != DS_OK) return st;
        if (w->split_result) *out = ds::capi::publish(new ds_comm{std::move(w->split_result)});
        return DS_OK;
    });
}

ds_status_t ds_comm_all_reduce(ds_comm_t* comm, ds_tensor_t* t, int32_t op, ds_work_t** work) {
    return guard("ds_comm_all_reduce", [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        const ds::Tensor& x = tensor_arg(t, "t");
        check_red(op);
        Op o = make_op(OpKind::AllReduce, "ds_comm_all_reduce", x);
        o.red = op;
        return run(c, std::move(o), work);
    });
}

ds_status_t ds_comm_broadcast(ds_comm_t* comm, ds_tensor_t* t, int32_t root, ds_work_t** work) {
    return guard("ds_comm_broadcast", [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        const ds::Tensor& x = tensor_arg(t, "t");
        check_root(c, root, "root");
        Op o = make_op(OpKind::Broadcast, "ds_comm_broadcast", x);
        o.peer = root;
        return run(c, std::move(o), work);
    });
}

ds_status_t ds_comm_reduce(ds_comm_t* comm, ds_tensor_t* t, int32_t op, int32_t root, ds_work_t** work) {
    return guard("ds_comm_reduce", [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        const ds::Tensor& x = tensor_arg(t, "t");
        check_red(op);
        check_root(c, root, "root");
        Op o = make_op(OpKind::Reduce, "ds_comm_reduce", x);
        o.red = op;
        o.peer = root;
        return run(c, std::move(o), work);
    });
}

ds_status_t ds_comm_all_gather(ds_comm_t* comm, const ds_tensor_t* in, ds_tensor_t* out, ds_work_t** work) {
    return guard("ds_comm_all_gather", [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        const ds::Tensor& a = tensor_arg(in, "in");
        const ds::Tensor& b = tensor_arg(out, "out");
        same_kind(a, "in", b, "out");
        if (b.numel() != a.numel() * c.size())
            ds::fail(DS_ERR_INVALID_ARG, "out has %lld elements; expected world_size (%d) x numel(in) (%lld) = %lld",
                     static_cast<long long>(b.numel()), c.size(), static_cast<long long>(a.numel()),
                     static_cast<long long>(a.numel() * c.size()));
        Op o = make_op(OpKind::AllGather, "ds_comm_all_gather", a);
        o.b = b;
        return run(c, std::move(o), work);
    });
}

ds_status_t ds_comm_all_gather_list(ds_comm_t* comm, const ds_tensor_t* in, ds_tensor_t* const* outs, int32_t n_outs,
                                    ds_work_t** work) {
    return guard("ds_comm_all_gather_list", [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        const ds::Tensor& a = tensor_arg(in, "in");
        if (!outs) ds::fail(DS_ERR_INVALID_ARG, "outs is NULL");
        if (n_outs != c.size()) ds::fail(DS_ERR_INVALID_ARG, "n_outs=%d but the communicator has world_size=%d", n_outs, c.size());
        Op o = make_op(OpKind::AllGatherList, "ds_comm_all_gather_list", a);
        for (int32_t r = 0; r < n_outs; ++r) {
            std::string name = "outs[" + std::to_string(r) + "]";
            const ds::Tensor& b = tensor_arg(outs[r], name.c_str());
            same_kind(a, "in", b, name.c_str());
            if (b.numel() != a.numel())
                ds::fail(DS_ERR_INVALID_ARG, "%s has %lld elements; expected numel(in) = %lld", name.c_str(),
                         static_cast<long long>(b.numel()), static_cast<long long>(a.numel()));
            o.outs.push_back(b);
        }
        return run(c, std::move(o), work);
    });
}

ds_status_t ds_comm_reduce_scatter(ds_comm_t* comm, const ds_tensor_t* in, ds_tensor_t* out, int32_t op, ds_work_t** work) {
    return guard("ds_comm_reduce_scatter", [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        const ds::Tensor& a = tensor_arg(in, "in");
        const ds::Tensor& b = tensor_arg(out, "out");
        same_kind(a, "in", b, "out");
        check_red(op);
        if (a.numel() != b.numel() * c.size())
            ds::fail(DS_ERR_INVALID_ARG, "in has %lld elements; expected world_size (%d) x numel(out) (%lld) = %lld",
                     static_cast<long long>(a.numel()), c.size(), static_cast<long long>(b.numel()),
                     static_cast<long long>(b.numel() * c.size()));
        Op o = make_op(OpKind::ReduceScatter, "ds_comm_reduce_scatter", a);
        o.b = b;
        o.red = op;
        o.count = static_cast<uint64_t>(b.numel());
        return run(c, std::move(o), work);
    });
}

ds_status_t ds_comm_all_to_all(ds_comm_t* comm, const ds_tensor_t* in, ds_tensor_t* out, ds_work_t** work) {
    return guard("ds_comm_all_to_all", [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        const ds::Tensor& a = tensor_arg(in, "in");
        const ds::Tensor& b = tensor_arg(out, "out");
        same_kind(a, "in", b, "out");
        if (a.numel() != b.numel())
            ds::fail(DS_ERR_INVALID_ARG, "in has %lld elements but out has %lld; they must be equal",
                     static_cast<long long>(a.numel()), static_cast<long long>(b.numel()));
        if (a.numel() % c.size() != 0)
            ds::fail(DS_ERR_INVALID_ARG, "in has %lld elements, not a multiple of world_size=%d", static_cast<long long>(a.numel()),
                     c.size());
        Op o = make_op(OpKind::AllToAll, "ds_comm_all_to_all", a);
        o.b = b;
        return run(c, std::move(o), work);
    });
}

ds_status_t ds_comm_barrier(ds_comm_t* comm, ds_work_t** work) {
    return guard("ds_comm_barrier", [&] {
        if (work) *work = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        Op o;
        o.kind = OpKind::Barrier;
        o.caller = "ds_comm_barrier";
        return run(c, std::move(o), work);
    });
}

ds_status_t ds_comm_send(ds_comm_t* comm, const ds_tensor_t* t, int32_t dst, int32_t tag, ds_work_t** work) {
    return p2p("ds_comm_send", OpKind::Send, comm, t, dst, tag, work);
}

ds_status_t ds_comm_recv(ds_comm_t* comm, ds_tensor_t* t, int32_t src, int32_t tag, ds_work_t** work) {
    return p2p("ds_comm_recv", OpKind::Recv, comm, t, src, tag, work);
}

ds_status_t ds_work_wait(ds_work_t* work, int32_t timeout_ms) {
    return guard("ds_work_wait", [&]() -> ds_status_t {
        auto& w = check_handle(work, "work")->w;
        bool flush;
        {
            std::lock_guard<std::mutex> lock(w->m);
            flush = !w->done && w->needs_flush;
        }
        if (flush)
            if (auto c = w->comm.lock()) c->request_flush();
        if (!w->wait_for(timeout_ms)) return DS_INPROGRESS;
        return result_of(*w);
    });
}

ds_status_t ds_work_test(ds_work_t* work, int32_t* out_done) {
    return guard("ds_work_test", [&] {
        check_out(out_done, "out_done");
        auto& w = check_handle(work, "work")->w;
        bool done, flush;
        {
            std::lock_guard<std::mutex> lock(w->m);
            done = w->done;
            flush = !done && w->needs_flush;
        }
        if (flush)
            if (auto c = w->comm.lock()) c->request_flush();
        *out_done = done ? 1 : 0;
    });
}

void ds_work_destroy(ds_work_t* work) { ds::capi::retire(work); }

ds_status_t ds_comm_log_summary(const ds_comm_t* comm, int32_t as_json, char** out) {
    return guard("ds_comm_log_summary", [&] {
        check_out(out, "out");
        *out = nullptr;
        ds::comm::Comm& c = comm_of(comm);
        if (as_json != 0 && as_json != 1) ds::fail(DS_ERR_INVALID_ARG, "as_json=%d must be 0 (text table) or 1 (JSON)", as_json);
        *out = dup_string(as_json ? c.logger().summary_json(c.rank(), c.size()) : c.logger().summary_text());
    });
}

ds_status_t ds_comm_log_reset(ds_comm_t* comm) {
    return guard("ds_comm_log_reset", [&] { comm_of(comm).logger().reset(); });
}

}  // extern "C"
