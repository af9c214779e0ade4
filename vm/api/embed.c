/* The embedding API's asynchronous part (gilvm.h): pending calls and GILState, thin layers
 * over runtime/pending.c and runtime/gilstate.c for C programs that embed gilvm. */
#include "vm/api/gilvm.h"
#include "runtime/runtime.h"

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
