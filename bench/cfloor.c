/* SPDX-License-Identifier: MIT */
/* cfloor.c — the raw C floors the GIL benchmarks are compared with, measured in the same run
 * by bench/run (which builds this file with cc into a temporary directory):
 *   pingpong  two threads hand a turn back and forth through one mutex and two condition
 *             variables: µs per round trip (what a GIL-free handoff between two threads costs)
 *   thread    pthread_create + pthread_join of a thread that does nothing: µs per thread
 *   clock     (cfloor clock) the core's clock, from a chain of dependent adds (one a cycle;
 *             x86-64 only): a shared host moves it, and every time in bench/run with it
 * Prints "name value" lines.  Usage: cfloor [ROUND_TRIPS [THREADS]] (0 skips that part),
 * or cfloor clock */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t to_pong = PTHREAD_COND_INITIALIZER, to_ping = PTHREAD_COND_INITIALIZER;
static int turn;                /* 0: ping's turn, 1: pong's turn; under mu */
static long rounds;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *pong(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (long i = 0; i < rounds; i++) {
        while (turn != 1)
            pthread_cond_wait(&to_pong, &mu);
        turn = 0;
        pthread_cond_signal(&to_ping);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *nothing(void *arg)
{
    return arg;
}

/* GHz: 4e8 adds, each waiting for the one before (an add takes one cycle). */
static int clock_ghz(void)
{
#if defined(__x86_64__)
    unsigned long x = 0, n = 100000000;
    double t0 = now_s();
    for (unsigned long i = 0; i < n; i++)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    double t1 = now_s();
    printf("clock_ghz %.2f\n", 4.0 * (double)n / (t1 - t0) / 1e9);
#endif
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "clock") == 0)
        return clock_ghz();
    long n = argc > 1 ? atol(argv[1]) : 20000;
    long nthreads = argc > 2 ? atol(argv[2]) : 2000;
    pthread_t t;

    if (n <= 0)
        goto threads;
    rounds = n + n / 10;                    /* the first tenth warms up */
    pthread_create(&t, NULL, pong, NULL);
    double t0 = 0;
    pthread_mutex_lock(&mu);
    for (long i = 0; i < rounds; i++) {
        if (i == n / 10)
            t0 = now_s();
        turn = 1;
        pthread_cond_signal(&to_pong);
        while (turn != 0)
            pthread_cond_wait(&to_ping, &mu);
    }
    pthread_mutex_unlock(&mu);
    double t1 = now_s();
    pthread_join(t, NULL);
    printf("pingpong_us %.3f\n", (t1 - t0) / (double)n * 1e6);

threads:
    if (nthreads <= 0)
        return 0;
    for (long i = 0; i < nthreads / 10; i++) {      /* warm up */
        pthread_create(&t, NULL, nothing, NULL);
        pthread_join(t, NULL);
    }
    t0 = now_s();
    for (long i = 0; i < nthreads; i++) {
        pthread_create(&t, NULL, nothing, NULL);
        pthread_join(t, NULL);
    }
    printf("thread_us %.3f\n", (now_s() - t0) / (double)nthreads * 1e6);
    return 0;
}
