/* SPDX-License-Identifier: MIT */
/* The OS [os]: process ids, fork, waitpid, _exit, and file descriptors (pipes, reads that
 * wait without the GIL, writes), enough for wakeup fds and talking to a forked child. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/sched.h"
#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/process.h"

BUILTIN(getpid) { *out = V_INT((int64_t)getpid()); return 0; }
BUILTIN(getppid) { *out = V_INT((int64_t)getppid()); return 0; }

/* ---- fork ---- */

/* Holding the GIL: no thread starts or finishes meanwhile.  The ones already starting or
 * finishing (outside the GIL, perhaps inside malloc) get done and the finished ones are
 * joined; then the VM's and the runtime's locks are taken so the child inherits them
 * consistent. */
static void fork_before(vm_thread *t)
{
    vm_wait_settled();
    vm_threads_reap();
    pthread_mutex_lock(&vm_proc.timer.mu);
    pthread_mutex_lock(&vm_proc.mu);
    rt_fork_before(&t->base);
}

static void fork_parent(vm_thread *t)
{
    rt_fork_after_parent(&t->base);
    pthread_mutex_unlock(&vm_proc.mu);
    pthread_mutex_unlock(&vm_proc.timer.mu);
}

#ifdef GILVM_SANITIZE
/* LeakSanitizer in a forked child still lists the parent's threads and cannot stop them
 * ("Running thread N was not suspended. False leaks are possible."): children skip the
 * exit-time leak check (the parent keeps it); stdio is flushed as exit() would. */
static void exit_without_leak_check(int status, void *arg)
{
    (void)arg;
    fflush(NULL);
    _exit(status);
}
#endif

static void fork_child(vm_thread *t)
{
#ifdef GILVM_SANITIZE
    on_exit(exit_without_leak_check, NULL);
#endif
    vm_process_after_fork_child(t);             /* thread objects first: states go next */
    rt_status st = rt_fork_after_child(&t->base);
    if (st.failed)
        rt_fatal(st.func, st.msg);
}

BUILTIN(fork)
{
    rt_interp *in = t->base.interp;
    if (in != rt_interp_main() || !in->config.allow_fork)
        return vm_raise(t, EXC(t)->runtime_error, "fork not supported for subinterpreters");
    if (atomic_load(&rt_main_runtime.finalizing) || atomic_load(&in->finalizing))
        return vm_raise(t, EXC(t)->finalization_error, "can't fork at interpreter shutdown");
    if (vm_audit(t, "os.fork", 0, NULL))
        return -1;
    fflush(NULL);                   /* else the child writes the parent's buffered output too */
    rt_sched_note_uncontrolled("fork");     /* the child runs uncontrolled */
    fork_before(t);
    pid_t pid = fork();
    int err = errno;
    if (pid == 0) {
        fork_child(t);
        *out = V_INT(0);
        return 0;
    }
    fork_parent(t);
    if (pid < 0)
        return vm_os_error(t, err);
    *out = V_INT((int64_t)pid);
    return 0;
}

BUILTIN(waitpid)
{
    int64_t pid = 0;
    if (vm_want_int(t, "waitpid", argv[0], &pid))
        return -1;
    for (;;) {
        int status = 0, err = 0, interrupted = 0;
        pid_t r;
        long pause_ns = 50000;      /* polled with backoff: a child's exit wakes no condvar */
        vm_blocking_begin_as(t, "waitpid");
        while ((r = waitpid((pid_t)pid, &status, WNOHANG)) == 0 || (r < 0 && errno == EINTR)) {
            if (vm_blocking_poll(t, NULL)) {
                interrupted = 1;
                break;
            }
            struct timespec ts = {0, pause_ns};
            nanosleep(&ts, NULL);
            if (pause_ns < 5000000)
                pause_ns *= 2;
        }
        err = errno;
        vm_blocking_end(t);
        if (interrupted) {
            if (vm_poll_in_wait(t))
                return -1;
            continue;
        }
        if (r < 0)
            return vm_os_error(t, err);
        /* As os.waitstatus_to_exitcode: the exit code, or minus the signal that ended it. */
        *out = V_INT(WIFSIGNALED(status) ? -(int64_t)WTERMSIG(status) : WEXITSTATUS(status));
        return 0;
    }
}

BUILTIN(_exit)
{
    int64_t code = 0;
    if (vm_want_int(t, "_exit", argv[0], &code))
        return -1;
    /* Nothing is cleaned up, as in CPython, but the GIL hold in progress is reported (to
     * --trace, which writes each event at once), so the trace shows the program's end, and
     * the --schedule-out file is written (before__exit), as at any exit. */
    rt_stats_close_hold(&t->base, rt_now_ns());
    if (vm_proc.before__exit)
        vm_proc.before__exit();
    _exit((int)(code & 0xff));
}

/* ---- file descriptors ---- */

BUILTIN(pipe)
{
    int fds[2];
    if (pipe(fds) != 0)
        return vm_os_error(t, errno);
    value v[2] = {V_INT(fds[0]), V_INT(fds[1])};
    *out = vm_tuple_new(t, 2, v);
    return 0;
}

BUILTIN(set_blocking)
{
    int fd = 0;
    if (vm_want_fd(t, "set_blocking", argv[0], &fd))
        return -1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, vm_truthy(argv[1]) ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) < 0)
        return vm_os_error(t, errno);
    *out = V_NONE;
    return 0;
}

/* Reads (`events` POLLIN) into or writes (POLLOUT) from buf: at once on a non-blocking fd,
 * else once the fd is ready, waiting with the GIL released and running signal handlers
 * meanwhile (on the main thread, as the wait wakes for them).  What read() or write()
 * returned, its errno in *err, or -2 if a handler raised or a limit was exceeded (exception
 * set).  The caller's buffer stays alive: a str argument sits on the thread's value stack. */
static ssize_t fd_io(vm_thread *t, int fd, short events, char *buf, size_t n, int *err)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK)) {
        ssize_t r = fl < 0 ? -1 : events == POLLIN ? read(fd, buf, n) : write(fd, buf, n);
        *err = errno;
        return r;
    }
    for (;;) {
        int interrupted = 0;
        ssize_t got = -1;
        vm_blocking_begin(t);
        struct pollfd p = {.fd = fd, .events = events};
        for (;;) {
            int r = poll(&p, 1, (int)(VM_WAIT_SLICE_NS / 1000000));
            if (r > 0 || (r < 0 && errno != EINTR))
                break;
            if (vm_blocking_poll(t, NULL)) {
                interrupted = 1;
                break;
            }
        }
        if (!interrupted)
            got = events == POLLIN ? read(fd, buf, n) : write(fd, buf, n);
        *err = errno;
        vm_blocking_end(t);
        if (!interrupted)
            return got;
        if (vm_poll_in_wait(t))
            return -2;
    }
}

/* Reads up to n bytes: at once from a non-blocking fd, else waiting with the GIL released. */
BUILTIN(fd_read)
{
    int fd = 0;
    int64_t n = 0;
    if (vm_want_fd(t, "fd_read", argv[0], &fd) || vm_want_int(t, "fd_read", argv[1], &n))
        return -1;
    if (n < 0 || n > (1 << 24))
        return vm_raise(t, EXC(t)->value_error, "fd_read() size out of range");
    if (n == 0) {                   /* as os.read(fd, 0): nothing to wait for */
        *out = vm_bytes_new(t, "", 0);
        return 0;
    }
    char *buf = vm_malloc((size_t)n + 1);
    if (!buf)
        return vm_raise(t, EXC(t)->memory_error, "cannot read %lld bytes", (long long)n);
    int err = 0;
    ssize_t got = fd_io(t, fd, POLLIN, buf, (size_t)n, &err);
    if (got >= 0)
        *out = vm_bytes_new(t, buf, (size_t)got);
    vm_free(buf);
    return got >= 0 ? 0 : got == -2 ? -1 : vm_os_error(t, err);
}

BUILTIN(fd_write)
{
    int fd = 0;
    if (vm_want_fd(t, "fd_write", argv[0], &fd))
        return -1;
    value d = argv[1];
    if (d.tag != T_BYTES && d.tag != T_STR)
        return vm_raise(t, EXC(t)->type_error, "fd_write() data must be bytes or str, not '%s'",
                        vm_type_name(d));
    int err = 0;
    ssize_t n = fd_io(t, fd, POLLOUT, AS_STR(d)->data, AS_STR(d)->len, &err);
    if (n == -2)
        return -1;
    if (n < 0)
        return vm_os_error(t, err);
    *out = V_INT((int64_t)n);
    return 0;
}

BUILTIN(fd_close)
{
    int fd = 0;
    if (vm_want_fd(t, "fd_close", argv[0], &fd))
        return -1;
    if (close(fd) != 0)
        return vm_os_error(t, errno);
    *out = V_NONE;
    return 0;
}

void vm_os_install(vm_thread *t)
{
    static const vm_native_def natives[] = {
        {"getpid", 0, bi_getpid, "getpid()"},
        {"getppid", 0, bi_getppid, "getppid()"},
        {"fork", 0, bi_fork, "fork()"},
        {"waitpid", 1, bi_waitpid, "waitpid(pid)"},
        {"_exit", 1, bi__exit, "_exit(code)"},
        {"pipe", 0, bi_pipe, "pipe()"},
        {"set_blocking", 2, bi_set_blocking, "set_blocking(fd, blocking)"},
        {"fd_read", 2, bi_fd_read, "fd_read(fd, n)"},
        {"fd_write", 2, bi_fd_write, "fd_write(fd, data)"},
        {"fd_close", 1, bi_fd_close, "fd_close(fd)"},
    };
    VM_DEF_NATIVES(t, natives);
}
