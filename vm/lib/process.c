/* SPDX-License-Identifier: MIT */
/* The VM's process-wide state (process.h): its one instance, its set-up, and the one reset
 * a forked child runs. */
#include <stdlib.h>
#include <unistd.h>

#include "vm/lib/process.h"

vm_process vm_proc = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .timer = {.mu = PTHREAD_MUTEX_INITIALIZER},
    .waker = {.mu = PTHREAD_MUTEX_INITIALIZER, .fds = {-1, -1}},
    .watch = {.mu = PTHREAD_MUTEX_INITIALIZER},
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    rt_cond_init(&vm_proc.quiet);
    rt_cond_init(&vm_proc.timer.cv);
    vm_waitq_init(&vm_proc.sleep);
}

void vm_process_init(void)
{
    pthread_once(&init_once, init);
}

void vm_process_count(int *counter, int delta)
{
    pthread_mutex_lock(&vm_proc.mu);
    *counter += delta;
    if (*counter == 0)
        pthread_cond_broadcast(&vm_proc.quiet);
    pthread_mutex_unlock(&vm_proc.mu);
}

void vm_process_after_fork_child(vm_thread *t)
{
    /* Only the forking thread exists here: nothing is blocked, starting or exiting. */
    vm_proc.nblocked = vm_proc.nstarting = vm_proc.nexiting = 0;
    vm_os_thread *os = vm_proc.os_threads;
    vm_proc.os_threads = NULL;
    /* The timer thread stayed in the parent, and so do its timers (one it was queueing
     * stays on vm_proc.calls, freed with the interpreter's calls at finalization). */
    vm_pcall *timers = vm_proc.timer.list;
    vm_proc.timer.list = NULL;
    vm_proc.timer.running = 0;
    /* The waker stayed in the parent, which still reads its pipe: the child makes its own. */
    rt_signal_set_notify_fd(-1);
    for (int i = 0; i < 2; i++)
        if (vm_proc.waker.fds[i] >= 0) {
            close(vm_proc.waker.fds[i]);
            vm_proc.waker.fds[i] = -1;
        }
    vm_proc.waker.running = 0;
    vm_proc.waker.wait_mu = NULL;
    vm_proc.waker.wait_cv = NULL;

    /* Every mutex and condvar: a thread that held or waited on one is gone. */
    pthread_mutex_init(&vm_proc.mu, NULL);
    rt_cond_init(&vm_proc.quiet);
    pthread_mutex_init(&vm_proc.timer.mu, NULL);
    rt_cond_init(&vm_proc.timer.cv);
    pthread_mutex_init(&vm_proc.waker.mu, NULL);
    pthread_mutex_init(&vm_proc.watch.mu, NULL);
    vm_waitq_init(&vm_proc.sleep);
    for (vm_obj *o = VM_INTERP(t)->heap; o; o = o->next) {
        if (o->tag != T_THREAD && o->tag != T_LOCK && o->tag != T_QUEUE)
            continue;
        vm_waitq_init(&((vm_waitable *)o)->wq);
        if (o->tag == T_THREAD)
            vm_thread_obj_forked(o, t);
    }

    while (os) {
        vm_os_thread *next = os->next;
        vm_free(os);
        os = next;
    }
    while (timers) {
        vm_pcall *next = timers->tnext;
        vm_pcall_free(timers);
        timers = next;
    }
    vm_interps_after_fork_child(t);
}
