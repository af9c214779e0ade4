/* SPDX-License-Identifier: MIT */
/* Time [time]: the wall and monotonic clocks, and sleep, which waits without the GIL. */
#include <math.h>
#include <time.h>

#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/process.h"

static double now_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

BUILTIN(time) { *out = V_FLOAT(now_s(CLOCK_REALTIME)); return 0; }
BUILTIN(perf_counter) { *out = V_FLOAT(now_s(CLOCK_MONOTONIC)); return 0; }
BUILTIN(monotonic_ns) { *out = V_INT((int64_t)rt_now_ns()); return 0; }

static int never(void *p) { return 0; }

BUILTIN(sleep)
{
    double secs = 0;
    if (vm_want_seconds(t, "sleep", "argument", "sleep length must be non-negative", argv[0],
                        &secs))
        return -1;
    if (secs == 0) {
        /* sleep(0) yields the GIL to any waiter, as CPython's time.sleep(0) does. */
        rt_thread_detach(&t->base);
        rt_thread_attach_urgent(&t->base);
    } else {
        uint64_t deadline = rt_now_ns() + (uint64_t)(fmin(secs, 1e9) * 1e9);
        if (vm_wait(t, &vm_proc.sleep, never, NULL, deadline) < 0)
            return -1;
    }
    *out = V_NONE;
    return 0;
}

void vm_time_install(vm_thread *t)
{
    static const vm_native_def natives[] = {
        {"time", 0, bi_time, "time()"},
        {"perf_counter", 0, bi_perf_counter, "perf_counter()"},
        {"monotonic_ns", 0, bi_monotonic_ns, "monotonic_ns()"},
        {"sleep", 1, bi_sleep, "sleep(secs)"},
    };
    VM_DEF_NATIVES(t, natives);
}
