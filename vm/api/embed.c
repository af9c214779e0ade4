/* SPDX-License-Identifier: MIT */
/* The embedding API's asynchronous part (gilvm.h): pending calls, GILState, saving and
 * restoring the GIL, interrupts and the output hook; thin layers over runtime/pending.c,
 * runtime/gilstate.c and runtime/thread.c for C programs that embed gilvm. */
#include "vm/api/gilvm.h"
#include "vm/core/output.h"
#include "vm/core/state.h"
#include "vm/lib/lib.h"

/* Refuses adds once the runtime is gone or finalizing: nothing would ever run them. */
static int running(void)
{
    return atomic_load(&rt_main_runtime.finalizing) == NULL && rt_main_runtime.initialized;
}

int gilvm_pending_add(int (*fn)(void *arg), void *arg)
{
    return running() ? rt_pending_add_main(fn, arg) : -1;
}

int gilvm_pending_add_interp(long long interp_id, int (*fn)(void *arg), void *arg)
{
    rt_interp *in = running() ? rt_interp_find(interp_id) : NULL;
    return in ? rt_pending_add(in, fn, arg) : -1;
}

int gilvm_gilstate_ensure(void)
{
    return rt_gilstate_ensure();
}

void gilvm_gilstate_release(int state)
{
    rt_gilstate_release(state);
}

int gilvm_gilstate_check(void)
{
    return rt_gilstate_check();
}

gilvm_thread *gilvm_save_thread(void)
{
    rt_thread *t = rt_thread_current();
    if (t)
        rt_thread_detach(t);
    return (gilvm_thread *)t;
}

void gilvm_restore_thread(gilvm_thread *state)
{
    if (state)
        rt_thread_attach((rt_thread *)state);
}

int gilvm_interrupt(void)
{
    rt_interp *in = running() ? rt_interp_main() : NULL;
    if (!in)
        return -1;
    vm_limits_interrupt((vm_interp *)in);
    return 0;
}

void gilvm_set_output(gilvm_write_fn fn, void *data)
{
    vm_output_set(fn, data);
}
