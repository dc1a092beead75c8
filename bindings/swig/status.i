/* status.i - how a failing ds_status_t reaches the target language.
 *
 * Every wrapped helper reports failure by recording a *pending* status on the calling thread
 * (dsabi_ok / dsabi_fail) and returning a neutral value. The language entry file then turns the
 * pending status into its own idiom right after the call:
 *
 *   Python  %exception raises dsabi.DsError (or the subclass for the code) - dsabi_python.i
 *   Java    %exception throws org.dsabi.DsException                        - dsabi_java.i
 *   Go      nothing is thrown; the hand-written package takes the status   - dsabi_go.i
 *           with take_status() on the same locked OS thread and returns *dsabi.Error
 *
 * The message is the library's thread-local ds_last_error(), or a binding-side message for
 * failures found before the library is called (a consumed DLPack capsule, a heap ByteBuffer...).
 * Pending state is thread-local, like ds_last_error(), so concurrent calls on different threads
 * (the GIL is released during calls) never see each other's failures.
 *
 * A pending status is any value other than DS_OK: dsabi_ok records errors (< 0) only, and helpers
 * record DS_ABORTED with dsabi_fail where a call was cancelled on request (a progress callback
 * that stopped a build, aborted communication work), so that it surfaces like an error.
 */

%{
#include <stdarg.h>
#include <stdio.h>

typedef struct dsabi_pending {
    ds_status_t status; /* != DS_OK after a failed or cancelled call, until taken */
    char message[1024]; /* binding-side message; "" means "use ds_last_error()" */
} dsabi_pending_t;

static _Thread_local dsabi_pending_t dsabi_pending;

/* Record st if it is an error. Returns 1 when the call may go on (st >= 0), 0 otherwise. */
static int dsabi_ok(ds_status_t st) {
    if (st >= 0) return 1;
    dsabi_pending.status = st;
    dsabi_pending.message[0] = '\0';
    return 0;
}

/* Record a failure detected by the binding itself (or DS_ABORTED), with its own message. */
static void dsabi_fail(ds_status_t st, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dsabi_pending.message, sizeof dsabi_pending.message, fmt, ap);
    va_end(ap);
    dsabi_pending.status = st;
}

/* Return the pending status (DS_OK if none) and clear it. The message stays readable. */
static ds_status_t dsabi_take_status(void) {
    ds_status_t st = dsabi_pending.status;
    dsabi_pending.status = DS_OK;
    return st;
}

/* The message for the status last taken on this thread. */
static const char* dsabi_error_message(void) {
    return dsabi_pending.message[0] ? dsabi_pending.message : ds_last_error();
}
%}
