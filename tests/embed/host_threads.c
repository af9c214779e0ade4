/* SPDX-License-Identifier: MIT */
/* Host test: the GIL from the host's own threads (save/restore, GILState), running code from
 * a thread that does not hold the GIL (a clear error, not a silent run), interrupting a
 * running script from another thread, and the instruction budget.  Built by tests/embed/run
 * against the installed library.  A deadlock here hangs: tests/embed/run's timeout fails it. */
#define _POSIX_C_SOURCE 200809L
#include <gilvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"

static const char PROG[] =
    "LOAD_INT 0\n STORE_GLOBAL counter\n"
    ".func bump(n)\n LOAD_GLOBAL counter\n LOAD_LOCAL n\n ADD\n STORE_GLOBAL counter\n"
    " LOAD_GLOBAL counter\n RETURN\n.end\n"
    /* spin(): tells the host it started, then loops forever inside a try that catches
     * everything it can: an interrupt must still end it. */
    ".func spin()\n .local e\n LOAD_GLOBAL started\n CALL 0\n POP\n"
    "top:\n .try h\n"
    "loop:\n JUMP_BACKWARD loop\n .end_try\n"
    "h:\n PUSH_EXC_INFO\n STORE_LOCAL e\n POP_EXCEPT\n JUMP_BACKWARD top\n.end\n";

static atomic_int started_flag;

static int started(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    atomic_store(&started_flag, 1);
    return 0;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A thread that never called gilvm_gilstate_ensure tries to run code. */
static void *no_gil(void *arg)
{
    int *status = arg;
    status[0] = gilvm_run_string("<nogil>", "LOAD_INT 1\n POP\n");
    status[1] = strcmp(gilvm_error_type() ? gilvm_error_type() : "", "RuntimeError") == 0 &&
                strstr(gilvm_error_message(), "does not hold the GIL") != NULL;
    gilvm_value r;
    status[2] = gilvm_call("bump", 0, NULL, &r);
    return NULL;    /* its recorded error is freed as the thread ends (valgrind: no leak) */
}

/* A host worker: GILState around many calls into bytecode. */
static void *worker(void *arg)
{
    int *ok = arg;
    for (int i = 0; i < 500; i++) {
        int st = gilvm_gilstate_ensure();
        if (st == GILVM_GILSTATE_UNAVAILABLE)
            return NULL;
        gilvm_value one = gilvm_int(1);
        if (gilvm_call("bump", 1, &one, NULL) == 0)
            ++*ok;
        gilvm_gilstate_release(st);
    }
    return NULL;
}

/* A C function that releases the GIL around blocking C work (Py_BEGIN_ALLOW_THREADS): it
 * waits for a host worker that itself needs the GIL. */
static int wait_for_worker(void *data, int argc, const gilvm_value *argv, gilvm_value *result)
{
    int ok = 0;
    pthread_t th;
    pthread_create(&th, NULL, worker, &ok);
    gilvm_thread *saved = gilvm_save_thread();
    pthread_join(th, NULL);
    gilvm_restore_thread(saved);
    *result = gilvm_int(ok);
    return 0;
}

/* Waits for spin() to start, then interrupts it. */
static void *interrupter(void *arg)
{
    while (!atomic_load(&started_flag))
        pause_ms(1);
    *(int *)arg = gilvm_interrupt();
    return NULL;
}

int main(void)
{
    gilvm_config cfg = {0};
    cfg.no_signal_handlers = 1;
    cfg.switch_interval_us = 1000;
    CHECK(gilvm_save_thread() == NULL, "no runtime: nothing to save");
    CHECK(gilvm_interrupt() == -1, "no runtime: interrupt refused");
    CHECK(gilvm_runtime_init(&cfg) == 0, "init");
    CHECK(gilvm_gilstate_check() == 1, "main holds the GIL after init");
    CHECK(gilvm_register("started", 0, started, NULL) == 0, "register started");
    CHECK(gilvm_register("wait_for_worker", 0, wait_for_worker, NULL) == 0, "register wait_for_worker");
    CHECK(gilvm_run_string("<prog>", PROG) == 0, "run the program");

    /* Running without the GIL fails clearly. */
    int st[3] = {-7, 0, -7};
    pthread_t th;
    pthread_create(&th, NULL, no_gil, st);
    pthread_join(th, NULL);
    CHECK(st[0] == GILVM_EXIT_USAGE && st[1] == 1 && st[2] == -1,
          "run_string/call from a thread without the GIL: refused, RuntimeError recorded");

    /* The main thread releases the GIL while it waits for host threads that need it. */
    int ok[2] = {0, 0};
    pthread_t w[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&w[i], NULL, worker, &ok[i]);
    gilvm_thread *saved = gilvm_save_thread();
    CHECK(saved != NULL && gilvm_gilstate_check() == 0, "saved: main no longer holds the GIL");
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    gilvm_restore_thread(saved);
    CHECK(gilvm_gilstate_check() == 1, "restored");
    gilvm_value r;
    CHECK(gilvm_get_global("counter", &r) == 0 && r.u.i == 1000 && ok[0] == 500 && ok[1] == 500,
          "both workers' 500 calls ran");

    /* A C function called from bytecode releases the GIL while it waits for a worker. */
    CHECK(gilvm_call("wait_for_worker", 0, NULL, &r) == 0 && r.u.i == 500, "C function saves the GIL");
    CHECK(gilvm_get_global("counter", &r) == 0 && r.u.i == 1500, "its worker's calls ran");

    /* Interrupt from another thread: uncatchable by the script's try. */
    int irc = -7;
    pthread_create(&th, NULL, interrupter, &irc);
    int status = gilvm_run_string("<spin>", "LOAD_GLOBAL spin\n CALL 0\n POP\n");
    pthread_join(th, NULL);
    CHECK(irc == 0, "gilvm_interrupt accepted");
    CHECK(status == GILVM_EXIT_LIMIT, "the interrupted run returns GILVM_EXIT_LIMIT");
    CHECK(strcmp(gilvm_error_type(), "LimitExceeded") == 0 && strcmp(gilvm_error_message(), "interrupted") == 0,
          "recorded as LimitExceeded: interrupted");
    CHECK(gilvm_run_string("<after>", "LOAD_INT 1\n POP\n") == 0, "the next run is not interrupted");

    atomic_store(&started_flag, 0);
    pthread_create(&th, NULL, interrupter, &irc);
    CHECK(gilvm_call("spin", 0, NULL, &r) == -1 && strcmp(gilvm_error_type(), "LimitExceeded") == 0,
          "gilvm_call interrupted too");
    pthread_join(th, NULL);

    /* A script blocked in sleep() wakes for the interrupt (else: tests/embed/run's timeout). */
    atomic_store(&started_flag, 0);
    pthread_create(&th, NULL, interrupter, &irc);
    status = gilvm_run_string("<sleep>", "LOAD_GLOBAL started\n CALL 0\n POP\n"
                                         "LOAD_GLOBAL sleep\n LOAD_INT 100000\n CALL 1\n POP\n");
    pthread_join(th, NULL);
    CHECK(status == GILVM_EXIT_LIMIT && strcmp(gilvm_error_message(), "interrupted") == 0,
          "an interrupt ends a sleep");

    /* The instruction budget. */
    gilvm_limits lim = {0};
    lim.max_instructions = 200000;
    CHECK(gilvm_set_limits(&lim) == 0, "set limits");
    atomic_store(&started_flag, 0);
    status = gilvm_run_string("<budget>", "LOAD_GLOBAL spin\n CALL 0\n POP\n");
    CHECK(status == GILVM_EXIT_LIMIT && strstr(gilvm_error_message(), "instruction limit"),
          "the budget ends an endless loop");
    lim.max_instructions = 0;
    CHECK(gilvm_set_limits(&lim) == 0 && gilvm_run_string("<ok>", "LOAD_INT 1\n POP\n") == 0,
          "limits lifted");

    gilvm_error_clear();
    CHECK(gilvm_runtime_finalize(0) == 0, "finalize");
    printf("host_threads: ok\n");
    return 0;
}
