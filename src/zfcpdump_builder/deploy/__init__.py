"""After the build: zipl's layouts, the install transaction, dump-disk preflight, inspect and
extract, and the QEMU boot test."""
