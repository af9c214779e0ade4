/* SPDX-License-Identifier: MIT */
/* Time [time]: the wall and monotonic clocks, and sleep, which waits without the GIL. */
#include <math.h>
#include <time.h>

#include "runtime/sched.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/process.h"

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Under the controlled scheduler the clocks are virtual (runtime/sched.c, docs/runtime.md). */
BUILTIN(time) { *out = V_FLOAT(rt_sched_wall_s(now_s(CLOCK_REALTIME))); return 0; }
BUILTIN(perf_counter)
{
    *out = V_FLOAT(rt_sched_active() ? (double)vm_clock_ns() * 1e-9 : now_s(CLOCK_MONOTONIC));
    return 0;
}
BUILTIN(monotonic_ns) { *out = V_INT((int64_t)vm_clock_ns()); return 0; }

static int never(void *p) { (void)p; return 0; }

BUILTIN(sleep)
{
    double secs = 0;
    if (vm_want_seconds(t, "sleep", "argument", "sleep length must be non-negative", argv[0],
                        &secs))
        return -1;
    if (secs == 0 && rt_sched_controls(&t->base))
        rt_sched_yield(&t->base, "sleep");
    else if (secs == 0) {
        /* sleep(0) yields the GIL to any waiter, as CPython's time.sleep(0) does. */
        rt_thread_detach(&t->base);
        rt_thread_attach_urgent(&t->base);
    } else {
        uint64_t deadline = vm_clock_ns() + (uint64_t)(fmin(secs, 1e9) * 1e9);
        if (vm_wait(t, &vm_proc.sleep, never, NULL, deadline) < 0)
            return -1;
    }
    *out = V_NONE;
    return 0;
}

void vm_time_install(vm_thread *t)
{
    vm_wait_register(never, "sleep", NULL);
    static const vm_native_def natives[] = {
        {"time", 0, bi_time, "time()"},
        {"perf_counter", 0, bi_perf_counter, "perf_counter()"},
        {"monotonic_ns", 0, bi_monotonic_ns, "monotonic_ns()"},
        {"sleep", 1, bi_sleep, "sleep(secs)"},
    };
    VM_DEF_NATIVES(t, natives);
}
