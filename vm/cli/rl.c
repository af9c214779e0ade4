/* SPDX-License-Identifier: MIT */
/* GNU readline loaded on demand (rl.h), for the REPL (repl.c). */
#include <dlfcn.h>
#include <stdio.h>

#include "vm/cli/rl.h"

cli_readline cli_rl;

#define STR_(x) #x
#define STR(x) STR_(x)

int cli_rl_load(char *err, size_t len)
{
    static int loaded;
    if (loaded)
        return 0;
    /* the soname of the readline the headers belong to, then the development link */
    static const char *const names[] = {"libreadline.so." STR(RL_VERSION_MAJOR),
                                        "libreadline.so"};
    void *lib = NULL;
    const char *file = names[0];
    for (size_t k = 0; !lib && k < sizeof names / sizeof *names; k++)
        lib = dlopen(file = names[k], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, len, "can't load GNU readline (%s)", dlerror());
        return -1;
    }
    /* (void **): POSIX dlsym returns object and function addresses alike */
#define CLI_RL_RESOLVE(name)                                                                  \
    if (!(*(void **)&cli_rl.name = dlsym(lib, #name))) {                                      \
        snprintf(err, len, "can't load GNU readline (%s lacks %s)", file, #name);             \
        dlclose(lib);                                                                         \
        return -1;                                                                            \
    }
    CLI_RL_SYMBOLS(CLI_RL_RESOLVE)
#undef CLI_RL_RESOLVE
    loaded = 1;
    return 0;
}
