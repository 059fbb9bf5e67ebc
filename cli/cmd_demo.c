/* SPDX-License-Identifier: MIT */
int cli_demo(int argc, char **argv);
int cli_demo(int argc, char **argv) { (void)argc; (void)argv; return 1; }
