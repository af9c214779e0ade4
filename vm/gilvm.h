/* gilvm's public embedding API: start the runtime, load and run programs, finalize.  A C
 * program that embeds gilvm includes only this header and links libgilvm.a. */
#ifndef GILVM_H
#define GILVM_H

#define GILVM_VERSION "0.1.0"

/* Exit statuses of gilvm_run_file and the gilvm executable. */
enum {
    GILVM_EXIT_OK = 0,          /* ran to completion */
    GILVM_EXIT_EXCEPTION = 1,   /* uncaught exception (traceback printed) */
    GILVM_EXIT_USAGE = 2,       /* bad command line, or a file that cannot be opened */
    GILVM_EXIT_DATAERR = 65,    /* malformed .gasm or rejected .gbc */
    GILVM_EXIT_SIGINT = 130,    /* uncaught KeyboardInterrupt (the process re-raises SIGINT) */
};

typedef struct {
    unsigned long switch_interval_us;   /* 0: default 5000 */
    int recursion_limit;                /* 0: default 1000 */
} gilvm_config;

/* Starts the runtime and the main interpreter on the calling (main) thread; 0 or -1. */
int gilvm_runtime_init(const gilvm_config *config);

/* Sets the program arguments (argv[0] is the program file) seen by the `argv` builtin. */
void gilvm_set_argv(int argc, char **argv);

/* Loads (.gasm or .gbc, by content) and runs a file in the main interpreter; returns a
 * GILVM_EXIT_* status or a SystemExit code.  Errors are reported on stderr. */
int gilvm_run_file(const char *path);

/* Assembles and runs source text as a module named `name`; same statuses as run_file. */
int gilvm_run_string(const char *name, const char *source);

/* Joins non-daemon threads, runs exit handlers and tears the runtime down; returns the
 * status to exit with (normally `status` itself). */
int gilvm_runtime_finalize(int status);

#endif
