/* SPDX-License-Identifier: MIT */
/* The embedding API (gilvm.h): starting and finalizing the runtime, running files, strings
 * and buffers.  Its asynchronous part (pending calls, GILState, interrupts, output) is
 * embed.c; values, calls, C functions and errors are host.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/api/run.h"
#include "vm/api/gilvm.h"
#include "vm/api/host.h"
#include "vm/api/instruments.h"
#include "vm/api/schedule.h"
#include "runtime/sched.h"
#include "vm/core/output.h"
#include "vm/lib/lib.h"
#include "vm/toolchain/module.h"

/* The end of a thread that fork() made the child's main thread: the child exits as a
 * program whose main thread returned, with the same status rules. */
static void forked_main_exit(vm_thread *t, int failed)
{
    int status = gilvm_runtime_finalize(failed ? vm_exit_status(t) : GILVM_EXIT_OK);
    if (status == GILVM_EXIT_SIGINT) {
        fflush(NULL);
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
    }
    exit(status);
}

_Static_assert(sizeof(gilvm_allocator) == sizeof(vm_allocator) &&
               offsetof(gilvm_allocator, realloc) == offsetof(vm_allocator, realloc) &&
               offsetof(gilvm_allocator, free) == offsetof(vm_allocator, free) &&
               offsetof(gilvm_allocator, data) == offsetof(vm_allocator, data),
               "gilvm_allocator and vm_allocator");
_Static_assert((int)GILVM_LIB_THREADS == (int)VM_LIB_THREADS &&
               (int)GILVM_LIB_SIGNAL == (int)VM_LIB_SIGNAL && (int)GILVM_LIB_OS == (int)VM_LIB_OS &&
               (int)GILVM_LIB_FFI == (int)VM_LIB_FFI, "GILVM_LIB_* values");

/* The loader of interp_exec and interp_run_file (vm_interp_loader_fn, lib.h). */
static int interp_loader(vm_thread *t, const char *name, const char *data, size_t len,
                         char *err, size_t errlen, const char **type)
{
    char *buf = NULL;
    if (data == NULL) {
        if (vm_read_file(name, &buf, &len)) {
            snprintf(err, errlen, "can't open file '%s': %s", name, strerror(errno));
            *type = "OSError";
            return -2;
        }
        data = buf;
    }
    vm_module m;
    int gbc = len >= 8 && memcmp(data, "GILVMBC", 8) == 0;
    int rc = vm_load_source(t, name, data, len, &m, err, errlen);
    free(buf);
    if (rc) {
        *type = gbc ? "BytecodeError" : "SyntaxError";
        return -2;
    }
    vm_module_link(t, &m);
    vm_code *body = m.codes[0];
    vm_module_free(&m);
    return vm_run_code(t, body, NULL, NULL, 0);
}

const char *gilvm_version(void)
{
    return GILVM_VERSION_STRING;
}

int gilvm_runtime_init(const gilvm_config *config)
{
    if (vm_hash_seed_init()) {
        fprintf(stderr, "gilvm: GILVM_HASHSEED must be \"random\" or an integer in range "
                "[0; 4294967295]\n");
        return -1;
    }
    vm_mem_set((const vm_allocator *)(config ? config->allocator : NULL));
    if (vm_mem_reserve_take()) {
        fprintf(stderr, "gilvm: init: out of memory\n");
        return -1;
    }
    rt_status st = rt_runtime_init(sizeof(vm_interp), sizeof(vm_thread), &vm_rt_hooks);
    if (st.failed) {
        fprintf(stderr, "gilvm: %s: %s\n", st.func ? st.func : "init", st.msg ? st.msg : "failed");
        return -1;
    }
    vm_thread *t = (vm_thread *)rt_thread_current();
    vm_lib_set_forked_main_exit(forked_main_exit);
    vm_interp_set_loader(interp_loader);
    if (config && config->switch_interval_us)
        rt_interp_set_switch_interval(t->base.interp, config->switch_interval_us);
    if (config && config->recursion_limit > 0) {
        t->base.interp->recursion_limit = config->recursion_limit;
        t->base.recursion_limit = config->recursion_limit;
    }
    vm_interp_setup(t);
    VM_INTERP(t)->ffi_disabled = config && config->no_ffi;
    vm_lib_install(t, config ? config->exclude : 0);
    if (!config || !config->no_signal_handlers)
        vm_signals_install_default(t);
    return 0;
}

void gilvm_set_argv(int argc, char **argv)
{
    vm_thread *t = vm_main_thread();
    value l = vm_list_new(t, (size_t)argc);      /* room for all: appending cannot fail */
    for (int i = 0; i < argc; i++)
        AS_LIST(l)->items[AS_LIST(l)->len++] = vm_str_c(t, argv[i]);
    VM_INTERP(t)->argv = l;
}

/* Reports a file or text that did not load: printed, and recorded as `type`. */
static int load_failed(const char *type, const char *err, int status)
{
    vm_output_flush();
    vm_printf(VM_STDERR, "gilvm: %s\n", err);
    vm_api_error_set(type, err, NULL);
    return status;
}

/* Links and runs a loaded module's body on t; an uncaught exception is recorded for
 * gilvm_error_* and printed; returns the exit status. */
static int run_module(vm_thread *t, vm_module *m)
{
    vm_module_link(t, m);
    vm_code *body = m->codes[0];
    vm_module_free(m);
    int status = GILVM_EXIT_OK;
    if (vm_run_code(t, body, NULL, NULL, 0)) {
        value e = t->exc;
        if (e.tag == T_EXC && !vm_class_is(AS_EXC(e)->cls, VM_INTERP(t)->exc.system_exit))
            vm_api_error_set_exc(t, e);
        status = vm_exit_status(t);
    }
    vm_api_returned(t);
    return status;
}

/* Loads `len` bytes (.gbc by its magic, else .gasm) and runs them. */
static int run_data(vm_thread *t, const char *name, const char *data, size_t len)
{
    vm_module m;
    char err[1024];
    if (vm_load_source(t, name, data, len, &m, err, sizeof err)) {
        int gbc = len >= 8 && memcmp(data, "GILVMBC", 8) == 0;
        return load_failed(gbc ? "BytecodeError" : "SyntaxError", err, GILVM_EXIT_DATAERR);
    }
    return run_module(t, &m);
}

int gilvm_run_file(const char *path)
{
    vm_thread *t = vm_api_caller("gilvm_run_file");
    if (!t)
        return GILVM_EXIT_USAGE;
    value ev = vm_str_c(t, path);
    if (vm_audit(t, "gilvm.run_file", 1, &ev)) {
        vm_api_error_set_exc(t, t->exc);
        return vm_exit_status(t);
    }
    char *data;
    size_t len;
    if (vm_read_file(path, &data, &len)) {
        char err[1024];
        snprintf(err, sizeof err, "can't open file '%s': %s", path, strerror(errno));
        return load_failed("OSError", err, GILVM_EXIT_USAGE);
    }
    int status = run_data(t, path, data, len);
    vm_free(data);
    return status;
}

int gilvm_run_string(const char *name, const char *source)
{
    vm_thread *t = vm_api_caller("gilvm_run_string");
    if (!t)
        return GILVM_EXIT_USAGE;
    return run_data(t, name, source, strlen(source));
}

int gilvm_run_buffer(const char *name, const void *data, size_t len)
{
    vm_thread *t = vm_api_caller("gilvm_run_buffer");
    if (!t)
        return GILVM_EXIT_USAGE;
    return run_data(t, name, (const char *)data, len);
}

int gilvm_set_limits(const gilvm_limits *limits)
{
    rt_thread *cur = rt_thread_current();
    if (!cur || !rt_main_runtime.initialized || cur->interp != rt_interp_main())
        return -1;
    vm_thread *t = (vm_thread *)cur;
    if (vm_limits_set(t, limits->max_instructions, limits->timeout_ms, limits->max_memory)) {
        t->exc = V_UNDEF;
        return -1;
    }
    return 0;
}

/* Joins the non-daemon threads; an exception while waiting (a signal handler raised) is
 * reported and ends the wait [wait_for_thread_shutdown]. */
static int join_threads(vm_thread *t, int status)
{
    if (vm_threads_join_all(t) == 0)
        return status;
    value e = t->exc;
    int sigint = e.tag == T_EXC && vm_class_is(AS_EXC(e)->cls, VM_INTERP(t)->exc.keyboard_interrupt);
    t->exc = V_UNDEF;
    vm_output_flush();
    vm_printf(VM_STDERR, "Exception ignored on threading shutdown:\n");
    vm_print_traceback(t, e);
    return sigint ? GILVM_EXIT_SIGINT : status;
}

int gilvm_runtime_finalize(int status)
{
    /* CPython's Py_FinalizeEx order.  No new thread from here on (interp->finalizing). */
    vm_thread *t = vm_main_thread();
    if (t == NULL)
        return status;
    atomic_store(&t->base.interp->finalizing, 1);
    status = join_threads(t, status);
    vm_pending_finish(t);
    vm_atexit_run(t);
    vm_interps_join(t);             /* sub-interpreters' threads and atexit functions */
    fflush(stdout);
    vm_schedule_finish();
    vm_instruments_finish(t);
    vm_interps_destroy_idle(t);     /* before main [finalize_subinterpreters] */
    /* Daemon threads never run bytecode again: they end at their next GIL take or wait slice
     * (or, under the controlled scheduler, when it stops and wakes them). */
    rt_runtime_set_finalizing(&t->base);
    rt_sched_stop();
    vm_lib_fini(t);
    rt_runtime_finalize();
    vm_api_cfunctions_free();
    vm_api_audit_hooks_clear();
    gilvm_error_clear();
    vm_mem_reserve_drop();      /* the allocator stays set: a daemon thread may still free */
    return status;
}
