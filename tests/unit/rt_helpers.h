/* SPDX-License-Identifier: MIT */
/* Shared by the runtime-level unit suites (test_runtime.c, test_async.c): start and stop
 * the bare runtime (no VM), and a sleep. */
#ifndef RT_TEST_HELPERS_H
#define RT_TEST_HELPERS_H

#include <check.h>
#include <time.h>

#include "runtime/runtime.h"

#define MS 1000000ull                   /* nanoseconds per millisecond */
#define DEADLINE_NS (10000 * MS)        /* "eventually": generous on a loaded 2-core box */

static inline void start(void)
{
    rt_status st = rt_runtime_init(sizeof(rt_interp), sizeof(rt_thread), NULL);
    ck_assert_msg(!st.failed, "init: %s", st.msg ? st.msg : "");
}

static inline void stop(void)
{
    rt_status st = rt_runtime_finalize();
    ck_assert_msg(!st.failed, "finalize: %s", st.msg ? st.msg : "");
}

static inline void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

#endif
