/* comm.i - communicators (ds_comm_*) and work handles (ds_work_*) for every language.
 *
 * CommHandle wraps ds_comm_t, WorkHandle ds_work_t. Each collective is one method with an async
 * flag: false runs it synchronously (NULL work, the result is there on return); true queues it and
 * returns a new WorkHandle. Queued work RETAINS the storage of its tensors in the library, but not
 * memory a tensor merely wraps (ds_tensor_wrap): the hand-written layers keep their tensor
 * objects - and so the arrays or buffers under them - until the work is known to be complete.
 *
 * ds_work_wait returns the work's own status: DS_OK, DS_ABORTED (work cancelled by
 * ds_comm_abort, pending here as DS_ABORTED so that it surfaces as an error) or an error, and
 * DS_INPROGRESS when the timeout expired first (not an error: wait() then answers false).
 */

%{
/* The work argument of a collective: a place for the handle when queued, NULL when synchronous. */
#define DSABI_WORK_ARG(async_op, w) ((async_op) ? &(w) : NULL)
%}

%nodefaultctor ds_comm;
%nodefaultdtor ds_comm;
struct ds_comm {};
%nodefaultctor ds_work;
%nodefaultdtor ds_work;
struct ds_work {};

%extend ds_comm_options {
    ds_comm_options() {
        ds_comm_options_t* opts = (ds_comm_options_t*)malloc(sizeof *opts);
        if (opts) ds_comm_options_init(opts);
        else dsabi_fail(DS_ERR_NOMEM, "out of host memory");
        return opts;
    }
    ~ds_comm_options() { free($self); }
}

/* Methods returning a WorkHandle hand it to the target language (NULL when synchronous). */
%newobject ds_comm::m_create;
%newobject ds_comm::m_split;
%newobject ds_comm::m_info_json;
%newobject ds_comm::m_log_summary;
%newobject ds_comm::m_all_reduce;
%newobject ds_comm::m_broadcast;
%newobject ds_comm::m_reduce;
%newobject ds_comm::m_all_gather;
%newobject ds_comm::m_all_gather_list;
%newobject ds_comm::m_reduce_scatter;
%newobject ds_comm::m_all_to_all;
%newobject ds_comm::m_barrier;
%newobject ds_comm::m_send;
%newobject ds_comm::m_recv;

%extend ds_comm {
    ~ds_comm() { ds_comm_destroy($self); }

    /* Join the job. opts as they are; the strings ("" or NULL: environment / default) and config
     * (NULL: logger off; not retained) are set for this call. */
    static ds_comm_t* m_create(ds_comm_options_t* opts, const char* master_addr, const char* store_dir,
                               const char* store_prefix, const char* bind_addr, const ds_config_t* config) {
        ds_comm_options_t o = *opts;
        o.master_addr = dsabi_or_null(master_addr);
        o.store_dir = dsabi_or_null(store_dir);
        o.store_prefix = dsabi_or_null(store_prefix);
        o.bind_addr = dsabi_or_null(bind_addr);
        o.config = config;
        ds_comm_t* comm = NULL;
        dsabi_ok(ds_comm_create(&o, &comm));
        return comm;
    }

    void m_abort() { dsabi_ok(ds_comm_abort($self)); }

    int32_t m_rank() {
        int32_t v = 0;
        dsabi_ok(ds_comm_get_rank($self, &v));
        return v;
    }

    int32_t m_world_size() {
        int32_t v = 0;
        dsabi_ok(ds_comm_get_world_size($self, &v));
        return v;
    }

    int32_t m_local_rank() {
        int32_t v = 0;
        dsabi_ok(ds_comm_get_local_rank($self, &v));
        return v;
    }

    char* m_info_json() {
        char* json = NULL;
        return dsabi_ok(ds_comm_query_info($self, &json)) ? dsabi_adopt_string(json) : NULL;
    }

    /* The group of this color (NULL, without error, for color < 0). */
    ds_comm_t* m_split(int32_t color, int32_t key) {
        ds_comm_t* child = NULL;
        dsabi_ok(ds_comm_split($self, color, key, &child));
        return child;
    }

    ds_work_t* m_all_reduce(ds_tensor_t* t, int32_t op, bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_all_reduce($self, t, op, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_broadcast(ds_tensor_t* t, int32_t root, bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_broadcast($self, t, root, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_reduce(ds_tensor_t* t, int32_t op, int32_t root, bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_reduce($self, t, op, root, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_all_gather(const ds_tensor_t* in, ds_tensor_t* out, bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_all_gather($self, in, out, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_all_gather_list(const ds_tensor_t* in, ds_tensor_t* const* tensors, int32_t n_tensors, bool async_op) {
        ds_work_t* w = NULL;
        if (n_tensors >= 0) dsabi_ok(ds_comm_all_gather_list($self, in, tensors, n_tensors, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_reduce_scatter(const ds_tensor_t* in, ds_tensor_t* out, int32_t op, bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_reduce_scatter($self, in, out, op, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_all_to_all(const ds_tensor_t* in, ds_tensor_t* out, bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_all_to_all($self, in, out, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_barrier(bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_barrier($self, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_send(const ds_tensor_t* t, int32_t dst, int32_t tag, bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_send($self, t, dst, tag, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    ds_work_t* m_recv(ds_tensor_t* t, int32_t src, int32_t tag, bool async_op) {
        ds_work_t* w = NULL;
        dsabi_ok(ds_comm_recv($self, t, src, tag, DSABI_WORK_ARG(async_op, w)));
        return w;
    }

    /* The comms logger's summary: DeepSpeed's text table, or JSON. */
    char* m_log_summary(bool as_json) {
        char* text = NULL;
        return dsabi_ok(ds_comm_log_summary($self, as_json ? 1 : 0, &text)) ? dsabi_adopt_string(text) : NULL;
    }

    void m_log_reset() { dsabi_ok(ds_comm_log_reset($self)); }
}

%extend ds_work {
    ~ds_work() { ds_work_destroy($self); }

    /* true: the work completed successfully; false: timeout_ms (>= 0) expired first. A failed or
     * aborted work leaves its status pending. */
    bool m_wait(int32_t timeout_ms) {
        ds_status_t st = ds_work_wait($self, timeout_ms);
        if (st == DS_INPROGRESS) return false;
        if (st == DS_ABORTED) dsabi_fail(DS_ABORTED, "%s", ds_last_error());
        else dsabi_ok(st);
        return st == DS_OK;
    }

    /* Whether the work has finished (successfully or not). */
    bool m_test() {
        int32_t done = 0;
        dsabi_ok(ds_work_test($self, &done));
        return done != 0;
    }
}
