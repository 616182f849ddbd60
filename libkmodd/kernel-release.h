/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Picks the kernel when none is given: the running one for root "/", else the only
 * lib/modules/<kver> of the root; -ENOENT if there is none, -ENOTUNIQ if several. */
int kernel_release_default(const char *root, char **ret);
