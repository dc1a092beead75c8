/*
 * backend_comm_abi.h - the frozen, versioned table between libdsabi and the NCCL half of a device
 * backend module.
 *
 * libdsabi_cuda.so exports, besides ds_backend_entry (backend_abi.h), the symbol
 * ds_backend_comm_entry returning a const ds_backend_comm_v1_t*. It is only present when the module
 * was built with NCCL; libdsabi looks it up in the already loaded module and checks api_version and
 * struct_size before use. Internal and unreleased like backend_abi.h: a new version gets a new struct,
 * v1 stays frozen.
 *
 * Communicators are opaque (void*). Every collective is enqueued on the communicator's own CUDA stream
 * (created with default flags, so it is ordered after work on the legacy default stream) and returns
 * once enqueued; wait() blocks until everything enqueued so far has finished. dtype values are
 * ds_dtype, op values ds_reduce_op (AVG included). Pointers are device pointers on the communicator's
 * device. Functions return a ds_backend_comm_rc; last_error() gives the text on the calling thread.
 */
#ifndef DSABI_BACKEND_COMM_ABI_H
#define DSABI_BACKEND_COMM_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DS_BACKEND_COMM_API_VERSION 2
#define DS_BACKEND_COMM_UNIQUE_ID_BYTES 128

enum ds_backend_comm_rc {
    DS_BACKEND_COMM_OK = 0,
    DS_BACKEND_COMM_ERR = 1,       /* NCCL or CUDA failed (ncclSystemError, ncclInternalError, ...) */
    DS_BACKEND_COMM_TIMEOUT = 2,   /* not finished within the timeout: the communicator was aborted */
    DS_BACKEND_COMM_PEER = 3,      /* ncclRemoteError: a peer failed or went away */
    DS_BACKEND_COMM_ABORTED = 4,   /* comm_abort() was called */
    DS_BACKEND_COMM_INVALID = 5,   /* bad argument (ncclInvalidArgument, ncclInvalidUsage) */
    DS_BACKEND_COMM_NO_DEVICE = 6  /* no driver, no GPU, or device index out of range */
};

typedef struct ds_backend_comm_v1 {
    uint32_t api_version; /* DS_BACKEND_COMM_API_VERSION */
    uint32_t struct_size; /* sizeof(ds_backend_comm_v1_t) */
    const char* name;     /* "nccl" */

    /* NCCL version of the loaded library (ncclGetVersion), e.g. 22809. */
    int (*version)(int32_t* out);
    /* Fill DS_BACKEND_COMM_UNIQUE_ID_BYTES bytes (ncclGetUniqueId); done by rank 0 of a group. */
    int (*get_unique_id)(void* out);
    /* Join a communicator on device dev. unique_ids holds two ids (2 * DS_BACKEND_COMM_UNIQUE_ID_BYTES,
     * from two get_unique_id calls on rank 0): the first rendezvouses every rank through a
     * non-blocking NCCL communicator, which can time out (TIMEOUT after timeout_ms); once all ranks
     * are known to be there, the second creates the blocking communicator that carries the data
     * (a non-blocking one costs ~50 us per call). timeout_ms also bounds every later wait(). */
    int (*comm_init)(int32_t dev, int32_t nranks, int32_t rank, const void* unique_ids, int64_t timeout_ms, void** out);
    /* Free the communicator (after comm_abort too). */
    int (*comm_destroy)(void* comm);
    /* Thread-safe: abort the communicator; blocked wait() calls return ABORTED. */
    int (*comm_abort)(void* comm);

    int (*all_reduce)(void* comm, const void* send, void* recv, uint64_t count, int32_t dtype, int32_t op);
    int (*broadcast)(void* comm, const void* send, void* recv, uint64_t count, int32_t dtype, int32_t root);
    int (*reduce)(void* comm, const void* send, void* recv, uint64_t count, int32_t dtype, int32_t op, int32_t root);
    int (*all_gather)(void* comm, const void* send, void* recv, uint64_t send_count, int32_t dtype);
    int (*reduce_scatter)(void* comm, const void* send, void* recv, uint64_t recv_count, int32_t dtype, int32_t op);
    int (*all_to_all)(void* comm, const void* send, void* recv, uint64_t count_per_rank, int32_t dtype);
    /* Point to point, batched: group_start(); send/recv ...; group_end(comm). */
    int (*group_start)(void);
    int (*group_end)(void* comm);
    int (*send)(void* comm, const void* buf, uint64_t count, int32_t dtype, int32_t peer);
    int (*recv)(void* comm, void* buf, uint64_t count, int32_t dtype, int32_t peer);
    /* Block until all work enqueued on the communicator finished; TIMEOUT aborts the communicator. */
    int (*wait)(void* comm, int64_t timeout_ms);
    const char* (*last_error)(void);
} ds_backend_comm_v1_t;

typedef const ds_backend_comm_v1_t* (*ds_backend_comm_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
