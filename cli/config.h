/* SPDX-License-Identifier: MIT */
/* config.h: one table of options (name, kind, default, bounds, help) drives the command line,
 * the config file and --help, as in Redis. A config file holds `name = value` lines (the long
 * option names without dashes), '#' comments and blank lines; the command line wins over the
 * file, which wins over the defaults. */
#ifndef CLI_CONFIG_H
#define CLI_CONFIG_H

#include <stddef.h>

typedef enum cfg_kind { CFG_STRING = 0, CFG_LONG, CFG_FLAG } cfg_kind;

typedef struct cfg_option {
    const char *name;  /* long option without "--" and config-file key */
    cfg_kind kind;
    const char *def;   /* default as text ("" for none) */
    long lo, hi;       /* bounds for CFG_LONG */
    const char *help;
    /* value after parsing: */
    char value[1024];
    long num;
    int set_by;        /* 0 default, 1 file, 2 command line */
} cfg_option;

/* Parses argv (after the command name) against `opts` (n entries). `--config FILE` loads a file
 * first. Arguments that are not options are collected into pos (at most max_pos; *n_pos gets
 * the count). Returns 0, 1 when --help was printed (to stdout, with `usage` then the table),
 * or 2 after printing one line on stderr about a bad option, value or file. */
int cfg_parse(cfg_option *opts, int n, int argc, char **argv, const char *usage, char **pos,
              int max_pos, int *n_pos);

/* A table entry: CFG("name", CFG_LONG, "16", 1, 1024, "help"). */
#define CFG(name, kind, def, lo, hi, help) {(name), (kind), (def), (lo), (hi), (help), {0}, 0, 0}

cfg_option *cfg_get(cfg_option *opts, int n, const char *name);

#endif
