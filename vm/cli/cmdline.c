/* SPDX-License-Identifier: MIT */
/* What the CLI's commands share (cmdline.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vm/api/gilvm.h"
#include "vm/cli/cmdline.h"

int cli_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "gilvm: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'gilvm --help' for more information.\n");
    return GILVM_EXIT_USAGE;
}

/* cli_usage_error with "CMD: " before the message. */
static int cmd_error(const char *cmd, const char *what, const char *arg)
{
    char fmt[128];
    snprintf(fmt, sizeof fmt, "%s: %s", cmd, what);
    return cli_usage_error(fmt, arg);
}

int cli_not_input(const char *cmd, const char *in, const char *out)
{
    struct stat sin, sout;
    if (!stat(in, &sin) && !stat(out, &sout) && sin.st_dev == sout.st_dev &&
        sin.st_ino == sout.st_ino)
        return cmd_error(cmd, "output file '%s' is the input file", out);
    return 0;
}

int cli_in_out(int argc, char **argv, const char *cmd, const char **in, const char **out)
{
    *in = *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o")) {
            if (++i >= argc)
                return cmd_error(cmd, "%s", "option -o needs a file name");
            *out = argv[i];
        } else if (!strncmp(argv[i], "-o", 2))
            *out = argv[i] + 2;
        else if (argv[i][0] == '-' && argv[i][1])
            return cmd_error(cmd, "unknown option '%s'", argv[i]);
        else if (*in)
            return cmd_error(cmd, "unexpected argument '%s'", argv[i]);
        else
            *in = argv[i];
    }
    if (!*in)
        return cmd_error(cmd, "%s", "missing input file");
    return *out ? cli_not_input(cmd, *in, *out) : 0;
}

int cli_output_close(FILE *fp, const char *path)
{
    int failed = ferror(fp) || fflush(fp) != 0;
    int saved = failed && errno ? errno : EIO;
    if (fclose(fp) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    if (!failed)
        return 0;
    struct stat st;
    if (!stat(path, &st) && S_ISREG(st.st_mode))
        remove(path);
    errno = saved;
    return -1;
}

const char *cli_opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) || (a[n] && a[n] != '='))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    return *i + 1 < argc ? argv[++*i] : "";
}
