/* SPDX-License-Identifier: MIT */
/* Installing the library into an interpreter, and its finalization (lib.h). */
#include "vm/lib/lib.h"
#include "vm/lib/process.h"

/* A module of an excluded group still installs its collector and call hooks (the runtime's
 * own paths may use them), but defines none of its natives (vm_def_natives). */
#define GROUP(g, call) do { vm_lib_natives_off = (exclude & (g)) != 0; call; } while (0)

void vm_lib_install(vm_thread *t, unsigned exclude)
{
    if (VM_INTERP(t) == (vm_interp *)rt_interp_main())
        vm_interp_note_main_exclude(exclude);
    vm_process_init();
    vm_builtins_install(t);
    vm_sys_install(t);
    vm_time_install(t);
    GROUP(VM_LIB_THREADS, vm_threading_install(t));
    GROUP(VM_LIB_THREADS, vm_lock_install(t));
    GROUP(VM_LIB_THREADS, vm_queue_install(t));
    vm_lib_natives_off = 0;
    vm_pcalls_install(t);
    GROUP(VM_LIB_SIGNAL, vm_signalmod_install(t));
    vm_lib_natives_off = 0;
    vm_atexit_install(t);
    GROUP(VM_LIB_OS, vm_os_install(t));
    vm_lib_natives_off = 0;
    vm_audit_install(t);
    vm_interp_install(t);
    vm_xiqueue_install(t);
    GROUP(VM_LIB_FFI, vm_ffi_install(t));
    vm_lib_natives_off = 0;
}

void vm_lib_set_forked_main_exit(void (*fn)(vm_thread *t, int failed))
{
    vm_proc.forked_main_exit = fn;
}

void vm_lib_set_before__exit(void (*fn)(void))
{
    vm_proc.before__exit = fn;
}

void vm_lib_fini(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    vm_wait_quiesce();
    vm_pcalls_fini(in);
    if (in == (vm_interp *)rt_interp_main()) {
        vm_interps_fini();
        vm_threads_fini();
        vm_waker_stop();
    }
}
