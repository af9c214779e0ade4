/* SPDX-License-Identifier: MIT */
/* Signals [Modules/signalmodule.c]: installing bytecode handlers, the signal numbers, sending
 * and raising signals, alarm, the wakeup fd.  The runtime (runtime/signals.c) owns the C
 * handler and the tripped flags; the handlers bytecode installs live in the main
 * interpreter (vm_interp.signal_handlers) and run at its main thread's polls (vm/core/poll.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/lib/lib.h"
#include "vm/lib/native.h"
#include "vm/lib/wait.h"

static int signal_range(vm_thread *t, value v, const char *fn, int *signum)
{
    int64_t n = 0;
    if (vm_want_int(t, fn, v, &n))
        return -1;
    if (n < 1 || n >= RT_NSIG)
        return vm_raise(t, EXC(t)->value_error, "signal number out of range");
    *signum = (int)n;
    return 0;
}

static value get_handler(vm_thread *t, int signum)
{
    value h = VM_INTERP(t)->signal_handlers[signum];
    if (h.tag != T_UNDEF)
        return h;
    switch (rt_signal_get(signum)) {
    case RT_SIG_DFL: return V_INT(RT_SIG_DFL);
    case RT_SIG_IGN: return V_INT(RT_SIG_IGN);
    default: return V_NONE;
    }
}

static int bi_default_int_handler(vm_thread *t, int argc, value *argv, value *out);

BUILTIN(signal)
{
    int signum = 0;
    if (!rt_signals_can_handle(&t->base))
        return vm_raise(t, EXC(t)->value_error,
                        "signal only works in main thread of the main interpreter");
    if (signal_range(t, argv[0], "signal", &signum))
        return -1;
    value h = argv[1];
    int action;
    if (vm_callable(h))
        action = RT_SIG_CATCH;
    else if (h.tag == T_INT && (h.u.i == RT_SIG_DFL || h.u.i == RT_SIG_IGN))
        action = (int)h.u.i;
    else
        return vm_raise(t, EXC(t)->type_error,
                        "signal handler must be SIG_IGN, SIG_DFL, or a callable object");
    value ev[2] = {V_INT(signum), h};
    if (vm_audit(t, "signal.signal", 2, ev))
        return -1;
    if (vm_signals_run(t))          /* signals that arrived before the change [CPython] */
        return -1;
    if (rt_signal_set(signum, action))
        return vm_os_error(t, errno);
    *out = get_handler(t, signum);
    VM_INTERP(t)->signal_handlers[signum] = h;
    /* What may end a wait unseen by deadlock detection; not the default SIGINT handler. */
    vm_wait_watch_handler(signum, action == RT_SIG_CATCH &&
                          !(signum == SIGINT && h.tag == T_NATIVE &&
                            AS_NATIVE(h)->fn == bi_default_int_handler));
    return 0;
}

BUILTIN(getsignal)
{
    int signum = 0;
    if (signal_range(t, argv[0], "getsignal", &signum))
        return -1;
    *out = get_handler(t, signum);
    return 0;
}

BUILTIN(default_int_handler)
{
    return vm_raise_value(t, vm_exc_new(t, EXC(t)->keyboard_interrupt, V_NONE));
}

BUILTIN(raise_signal)
{
    int signum = 0;
    if (signal_range(t, argv[0], "raise_signal", &signum))
        return -1;
    if (raise(signum) != 0)
        return vm_os_error(t, errno);
    *out = V_NONE;
    return vm_signals_run(t);       /* the handler runs now if this is the main thread */
}

BUILTIN(kill)
{
    int64_t pid = 0, sig = 0;
    if (vm_want_int(t, "kill", argv[0], &pid) || vm_want_int(t, "kill", argv[1], &sig))
        return -1;
    if (pid < INT32_MIN || pid > INT32_MAX || sig < INT32_MIN || sig > INT32_MAX)
        return vm_raise(t, EXC(t)->overflow_error, "kill() argument out of range");
    if (kill((pid_t)pid, (int)sig) != 0)
        return vm_os_error(t, errno);
    *out = V_NONE;
    return vm_signals_run(t);       /* it may have been for us [os.kill] */
}

BUILTIN(alarm)
{
    int64_t secs = 0;
    if (vm_want_int(t, "alarm", argv[0], &secs))
        return -1;
    if (secs < 0)
        return vm_raise(t, EXC(t)->value_error, "alarm() argument must be non-negative");
    if (secs > UINT32_MAX)
        return vm_raise(t, EXC(t)->overflow_error, "alarm() argument out of range");
    *out = V_INT((int64_t)alarm((unsigned)secs));
    return 0;
}

BUILTIN(set_wakeup_fd)
{
    int64_t fd = 0;
    if (vm_want_int(t, "set_wakeup_fd", argv[0], &fd))
        return -1;
    if (!rt_signals_can_handle(&t->base))
        return vm_raise(t, EXC(t)->value_error,
                        "set_wakeup_fd only works in main thread of the main interpreter");
    if (fd != -1) {
        struct stat st;
        if (fd < 0 || fd > INT32_MAX || fstat((int)fd, &st) != 0)
            return vm_os_error(t, fd < 0 || fd > INT32_MAX ? EBADF : errno);
        int fl = fcntl((int)fd, F_GETFL);
        if (fl < 0)
            return vm_os_error(t, errno);
        if (!(fl & O_NONBLOCK))
            return vm_raise(t, EXC(t)->value_error, "the fd %d must be in non-blocking mode",
                            (int)fd);
    }
    *out = V_INT(rt_signal_set_wakeup_fd((int)fd));
    vm_wait_watch_handler(0, fd != -1);
    return 0;
}

BUILTIN(signal_count)
{
    int signum = 0;
    if (signal_range(t, argv[0], "signal_count", &signum))
        return -1;
    *out = V_INT((int64_t)rt_signal_count(signum));
    return 0;
}

void vm_signalmod_install(vm_thread *t)
{
    for (int i = 0; i < RT_NSIG; i++)
        VM_INTERP(t)->signal_handlers[i] = V_UNDEF;
    static const vm_native_def natives[] = {
        {"signal", 2, bi_signal, "signal(signum, handler)"},
        {"getsignal", 1, bi_getsignal, "getsignal(signum)"},
        {"default_int_handler", -1, bi_default_int_handler, "default_int_handler(*args)"},
        {"raise_signal", 1, bi_raise_signal, "raise_signal(signum)"},
        {"kill", 2, bi_kill, "kill(pid, signum)"},
        {"alarm", 1, bi_alarm, "alarm(secs)"},
        {"set_wakeup_fd", 1, bi_set_wakeup_fd, "set_wakeup_fd(fd)"},
        {"signal_count", 1, bi_signal_count, "signal_count(signum)"},
    };
    VM_DEF_NATIVES(t, natives);
    static const struct { const char *name; int value; } consts[] = {
        {"SIG_DFL", RT_SIG_DFL}, {"SIG_IGN", RT_SIG_IGN}, {"NSIG", RT_NSIG},
        {"SIGHUP", SIGHUP}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT}, {"SIGABRT", SIGABRT},
        {"SIGKILL", SIGKILL}, {"SIGUSR1", SIGUSR1}, {"SIGSEGV", SIGSEGV}, {"SIGUSR2", SIGUSR2},
        {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM}, {"SIGTERM", SIGTERM}, {"SIGCHLD", SIGCHLD},
        {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP}, {"SIGWINCH", SIGWINCH},
    };
    for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
        vm_global_set(t, consts[i].name, V_INT(consts[i].value));
}

void vm_signals_install_default(vm_thread *t)
{
    /* Not if the process was started with SIGINT ignored (a background job) [CPython]. */
    if (rt_signals_can_handle(&t->base) && rt_signal_get(SIGINT) == RT_SIG_DFL &&
        rt_signal_set(SIGINT, RT_SIG_CATCH) == 0)
        VM_INTERP(t)->signal_handlers[SIGINT] = vm_global_get(VM_INTERP(t), "default_int_handler");
}
