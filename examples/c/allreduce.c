/* Sum a tensor over every rank of a job, synchronously and asynchronously.
 *
 *     dsrun -n 4 ./example_allreduce        (any launcher that sets RANK, WORLD_SIZE, MASTER_ADDR, ...)
 *     ./example_allreduce                   (a job of one rank)
 */
#include <dsabi.h>
#include <stdio.h>

static int fail(const char* what) {
    fprintf(stderr, "%s: %s\n", what, ds_last_error());
    return 1;
}

int main(void) {
    ds_comm_t* comm = NULL;
    if (ds_comm_create(NULL, &comm) != DS_OK) return fail("ds_comm_create"); /* rendezvous from the environment */
    int32_t rank = 0, world = 1;
    ds_comm_get_rank(comm, &rank);
    ds_comm_get_world_size(comm, &world);

    int64_t shape[1] = {8};
    ds_tensor_t* t = NULL;
    if (ds_tensor_create(DS_DTYPE_F32, 1, shape, DS_DEV_CPU, 0, &t) != DS_OK) return fail("ds_tensor_create");
    ds_tensor_fill(t, rank + 1.0);

    /* Synchronous: returns when every rank holds the sum 1 + 2 + ... + world. */
    if (ds_comm_all_reduce(comm, t, DS_REDUCE_SUM, NULL) != DS_OK) return fail("ds_comm_all_reduce");

    /* Asynchronous: queue the average, do other work, then wait. */
    ds_work_t* work = NULL;
    if (ds_comm_all_reduce(comm, t, DS_REDUCE_AVG, &work) != DS_OK) return fail("ds_comm_all_reduce");
    /* ... compute something else here ... */
    if (ds_work_wait(work, -1) != DS_OK) return fail("ds_work_wait");
    ds_work_destroy(work);

    float* data = NULL;
    ds_tensor_get_data(t, (void**)&data);
    float expected = world * (world + 1) / 2.0f; /* the average of equal sums is the sum */
    if (rank == 0) printf("sum over %d ranks: %g (expected %g)\n", world, data[0], expected);
    int ok = data[0] == expected && data[7] == expected;
    ds_tensor_destroy(t);
    ds_comm_destroy(comm);
    return ok ? 0 : 1;
}
