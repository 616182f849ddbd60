/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reading package files through librpm, for the parts of libkmodd that use librpm's own types
 * (kmp.c, transaction.c). The one adapter from rpmRC lives behind kmp_open_package(). */

#include <rpm/header.h>
#include <rpm/rpmio.h>

/* Opens a package and reads its headers, verifying digests (and signatures when present, a
 * missing or untrusted key is not an error here) the way `rpm -K` does. -ENOEXEC when it is
 * not an rpm package, -EBADMSG on a digest mismatch. */
int kmp_open_package(const char *path, FD_t *ret_fd, Header *ret_h);

/* Pushes the payload decompressor the header names onto fd; on success *ret owns fd. */
int kmp_payload_open(FD_t fd, Header h, FD_t *ret);
