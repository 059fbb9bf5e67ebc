/* SPDX-License-Identifier: MIT */
/* cli.h: subcommands of the `tessera` executable. Each takes the arguments after the command
 * name (argv[0] is the command name) and returns the process exit status: 0 on success, 1 when
 * the input could not be processed, 2 for a usage error. Every failure prints one line on
 * stderr naming the problem. */
#ifndef CLI_H
#define CLI_H

int cli_render(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_user(int argc, char **argv);

/* Strict number parsing for options: the whole string must be a number in [lo, hi]. Return 0 on
 * success, -1 otherwise. */
int cli_parse_long(const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *s, double *out);

#endif
