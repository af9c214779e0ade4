/* Installing the library into an interpreter, and its finalization (lib.h). */
#include "vm/lib/lib.h"
#include "vm/lib/process.h"

void vm_lib_install(vm_thread *t)
{
    vm_process_init();
    vm_builtins_install(t);
    vm_sys_install(t);
    vm_time_install(t);
    vm_threading_install(t);
    vm_lock_install(t);
    vm_queue_install(t);
    vm_pcalls_install(t);
    vm_signalmod_install(t);
    vm_atexit_install(t);
    vm_os_install(t);
    vm_audit_install(t);
    vm_ffi_install(t);
}

void vm_lib_set_forked_main_exit(void (*fn)(vm_thread *t, int failed))
{
    vm_proc.forked_main_exit = fn;
}

void vm_lib_fini(vm_thread *t)
{
    vm_interp *in = VM_INTERP(t);
    vm_wait_quiesce();
    vm_pcalls_fini(in);
    if (in == (vm_interp *)rt_interp_main()) {
        vm_threads_fini();
        vm_waker_stop();
    }
}
