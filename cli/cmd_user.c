/* SPDX-License-Identifier: MIT */
/* cmd_user.c: `tessera user`: add, change, remove and list the accounts of a data directory
 * (also while the server runs: it reads them from the index on every sign-in). Passwords come
 * from the first line of standard input, never from the command line (where `ps` shows them). */
#define _POSIX_C_SOURCE 200809L
#include "access.h"
#include "cli.h"
#include "config.h"
#include "store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char k_usage[] =
    "usage: tessera user add    --data DIR [--role admin|reader] NAME   (password on stdin)\n"
    "       tessera user passwd --data DIR [--role admin|reader] NAME   (password on stdin)\n"
    "       tessera user del    --data DIR NAME\n"
    "       tessera user list   --data DIR\n"
    "\n"
    "Manages the accounts that sign in to 'tessera serve'. An admin manages studies, users,\n"
    "API tokens and share links; a reader views every study and shares it.\n";

static int
read_password(char *out, size_t cap)
{
    if (!fgets(out, (int)cap, stdin)) {
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static int
print_user(void *user, const access_user *u)
{
    (void)user;
    char t[32];
    struct tm tm;
    gmtime_r(&u->created, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-24s %-7s %s\n", u->name, access_role_name(u->role), t);
    return 0;
}

int
cli_user(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fputs(k_usage, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    const char *verb = argv[1];
    cfg_option opts[] = {
        CFG("data", CFG_STRING, "", 0, 0, "data directory; required"),
        CFG("role", CFG_STRING, "", 0, 0, "admin or reader (add: reader)"),
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    char *pos[2];
    int n_pos = 0;
    int rc = cfg_parse(opts, n, argc - 1, argv + 1, k_usage, pos, 2, &n_pos);
    if (rc) {
        return rc == 1 ? 0 : 2;
    }
    const char *dir = cfg_get(opts, n, "data")->value;
    const char *role_s = cfg_get(opts, n, "role")->value;
    int listing = strcmp(verb, "list") == 0;
    if (!dir[0] || (listing ? n_pos != 0 : n_pos != 1)) {
        fputs(k_usage, stderr);
        return 2;
    }
    if (!listing && strcmp(verb, "add") != 0 && strcmp(verb, "passwd") != 0 &&
        strcmp(verb, "del") != 0) {
        fprintf(stderr, "tessera user: unknown action '%s' (add, passwd, del, list)\n", verb);
        return 2;
    }
    access_role role = role_s[0] ? access_role_parse(role_s) : ACCESS_READER;
    if (role != ACCESS_ADMIN && role != ACCESS_READER) {
        fprintf(stderr, "tessera user: --role is admin or reader\n");
        return 2;
    }
    store_opts so = {0};
    so.dir = dir;
    store *st = NULL;
    tsr_err err = {0};
    if (store_open(&so, &st, &err) != TSR_OK) {
        fprintf(stderr, "tessera user: %s\n", err.msg);
        return 1;
    }
    if (listing) {
        rc = access_user_each(st, print_user, NULL, &err);
    } else if (strcmp(verb, "del") == 0) {
        rc = access_user_delete(st, pos[0], &err);
    } else {
        char pw[1100];
        if (read_password(pw, sizeof pw) != 0) {
            rc = tsr_err_set(&err, TSR_EINVAL, "no password on standard input");
        } else {
            int replace = strcmp(verb, "passwd") == 0;
            if (replace && !role_s[0]) {
                role = ACCESS_NONE; /* passwd keeps the role unless one is given */
            }
            rc = access_user_put(st, pos[0], pw, role, replace, &err);
            memset(pw, 0, sizeof pw);
        }
    }
    store_close(st);
    if (rc != TSR_OK) {
        fprintf(stderr, "tessera user: %s\n", err.msg);
        return 1;
    }
    if (!listing) {
        printf("tessera user: %s %s\n", verb, pos[0]);
    }
    return 0;
}
