/* SPDX-License-Identifier: MIT */
/* The monotonic clock and timed condition-variable waits that every blocking wait of the
 * runtime and the VM uses, so that deadline arithmetic is written once. */
#include <errno.h>
#include <time.h>

#include "internal.h"

uint64_t rt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rt_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    RT_MUST(pthread_condattr_init(&attr));
    RT_MUST(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC));
    RT_MUST(pthread_cond_init(c, &attr));
    RT_MUST(pthread_condattr_destroy(&attr));
}

int rt_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
    int r = pthread_cond_timedwait(c, m, &ts);
    if (r != 0 && r != ETIMEDOUT)
        RT_FATAL("pthread_cond_timedwait failed");
    return r == ETIMEDOUT || rt_now_ns() >= deadline_ns;
}
