/* SPDX-License-Identifier: MIT */
/* main.c: the `tessera` command: dispatches to its subcommands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} k_commands[] = {
    {"render", cli_render, "render one frame of a DICOM file to PNG or JPEG"},
    {"info", cli_info, "print the attributes the renderer reads from a DICOM file"},
    {"demo", cli_demo, "write the project's synthetic demo DICOM files"},
    {"serve", cli_serve, "serve the stored studies over DICOMweb and the viewer"},
    {"import", cli_import, "store DICOM files and folders into the data directory"},
    {"user", cli_user, "add, change, remove or list the accounts that sign in"},
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: tessera COMMAND [OPTIONS]\n\n"
                 "Tessera turns DICOM images into pixels for any browser.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++) {
        fprintf(out, "  %-8s %s\n", k_commands[i].name, k_commands[i].summary);
    }
    fprintf(out, "\n'tessera COMMAND --help' explains each command's options.\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++) {
        if (strcmp(argv[1], k_commands[i].name) == 0) {
            return k_commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "tessera: unknown command '%s' (try 'tessera --help')\n", argv[1]);
    return 2;
}
