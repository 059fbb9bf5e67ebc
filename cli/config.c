/* SPDX-License-Identifier: MIT */
/* config.c: the option table behind `tessera serve` and `tessera import` (see config.h). */
#include "config.h"
#include "cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cfg_option *
cfg_get(cfg_option *opts, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(opts[i].name, name) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

static int
set_value(cfg_option *o, const char *v, int by, const char *where)
{
    if (o->kind == CFG_LONG) {
        if (cli_parse_long(v, o->lo, o->hi, &o->num) != 0) {
            fprintf(stderr, "tessera: %s: %s must be an integer in %ld..%ld, got '%s'\n", where,
                    o->name, o->lo, o->hi, v);
            return -1;
        }
    } else if (o->kind == CFG_FLAG) {
        if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            o->num = 1;
        } else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            o->num = 0;
        } else {
            fprintf(stderr, "tessera: %s: %s must be yes or no, got '%s'\n", where, o->name, v);
            return -1;
        }
    }
    if (strlen(v) >= sizeof o->value) {
        fprintf(stderr, "tessera: %s: value of %s is too long\n", where, o->name);
        return -1;
    }
    snprintf(o->value, sizeof o->value, "%s", v);
    o->set_by = by;
    return 0;
}

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

static int
load_file(cfg_option *opts, int n, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tessera: cannot read config file %s\n", path);
        return -1;
    }
    char line[2048];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') {
            continue;
        }
        char *eq = strchr(s, '=');
        char where[1100];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!eq) {
            fprintf(stderr, "tessera: %s: expected 'name = value'\n", where);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        cfg_option *o = cfg_get(opts, n, key);
        if (!o || strcmp(key, "config") == 0) {
            fprintf(stderr, "tessera: %s: unknown setting '%s'\n", where, key);
            rc = -1;
        } else if (o->set_by < 2) {
            rc = set_value(o, val, 1, where);
        }
    }
    fclose(f);
    return rc;
}

static void
help(const cfg_option *opts, int n, const char *usage)
{
    printf("%s\noptions (each also settable as `name = value` in the --config file):\n", usage);
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opts[i].name,
                 opts[i].kind == CFG_FLAG ? "" : opts[i].kind == CFG_LONG ? " N" : " VALUE");
        printf("  %-26s %s", left, opts[i].help);
        if (opts[i].def[0]) {
            printf(" (default: %s)", opts[i].def);
        }
        printf("\n");
    }
    printf("  %-26s %s\n  %-26s %s\n", "--config FILE", "read settings from FILE",
           "-h, --help", "show this help");
}

int
cfg_parse(cfg_option *opts, int n, int argc, char **argv, const char *usage, char **pos,
          int max_pos, int *n_pos)
{
    *n_pos = 0;
    const char *config = NULL;
    /* pass 1: command line */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help(opts, n, usage);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (strcmp(a, "--") == 0) {
                continue;
            }
            if (*n_pos == max_pos) {
                fprintf(stderr, "tessera: too many arguments (at most %d)\n", max_pos);
                return 2;
            }
            pos[(*n_pos)++] = argv[i];
            continue;
        }
        char name[128];
        const char *eq = strchr(a + 2, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof name) {
            fprintf(stderr, "tessera: unknown option %s\n", a);
            return 2;
        }
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        cfg_option *o = cfg_get(opts, n, name);
        int is_config = strcmp(name, "config") == 0;
        if (!o && !is_config) {
            fprintf(stderr, "tessera: unknown option --%s (try --help)\n", name);
            return 2;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && o && o->kind == CFG_FLAG) {
            v = "yes";
        }
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tessera: --%s needs a value\n", name);
                return 2;
            }
            v = argv[++i];
        }
        if (is_config) {
            config = v;
        } else if (set_value(o, v, 2, "command line") != 0) {
            return 2;
        }
    }
    if (config && load_file(opts, n, config) != 0) {
        return 2;
    }
    for (int i = 0; i < n; i++) {
        if (opts[i].set_by == 0 && set_value(&opts[i], opts[i].def, 0, "default") != 0) {
            return 2;
        }
    }
    return 0;
}
