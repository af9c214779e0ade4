/* SPDX-License-Identifier: MIT */
/* What the CLI's commands share (main.c, traceview.c, explore.c): usage errors, options with values, "IN [-o OUT]"
 * arguments, and output files that are written whole or not at all. */
#ifndef VM_CMDLINE_H
#define VM_CMDLINE_H

#include <stdio.h>

/* The whole gilvm command line (main.c): runs the command `argv` names and returns the exit
 * status that main returns (an uncaught KeyboardInterrupt re-raises SIGINT instead).  Called
 * once per process: by main, and by each run of `gilvm explore` in its fork()ed child. */
int cli_main(int argc, char **argv);

/* Prints "gilvm: MESSAGE" (fmt with one string argument) and the --help hint to stderr;
 * returns the usage error's exit status, 2. */
int cli_usage_error(const char *fmt, const char *arg);

/* The value of option `name` at argv[*i], given as "--name=VALUE" or as "--name VALUE" (then
 * *i moves past VALUE), as getopt_long takes it; "" if VALUE is missing (an error for every
 * option); NULL if argv[*i] is another option. */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name);

/* Reads the arguments of command `cmd` ("asm"): one input, and an output given as "-o OUT"
 * or "-oOUT" (*out stays NULL without one).  An input that the output names too (by another
 * name, or a link) is refused, since writing it would destroy the input.  0, or the usage
 * error's status with "gilvm: CMD: ..." printed. */
int cli_in_out(int argc, char **argv, const char *cmd, const char **in, const char **out);

/* Refuses output `out` if it is input `in` (the same device and inode); 0, or the usage
 * error's status with "gilvm: CMD: output file 'OUT' is the input file" printed. */
int cli_not_input(const char *cmd, const char *in, const char *out);

/* Finishes the output file `fp`, opened on `path`: a write error, or a failing fflush or
 * fclose (a full disk shows only at one of them: `-o /dev/full` in the tests), makes it -1
 * with errno set, and a regular file left half-written is removed; else 0. */
int cli_output_close(FILE *fp, const char *path);

#endif
