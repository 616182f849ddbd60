/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Cleanup helpers for third-party handles, one place for all of them. */

#include <curl/curl.h>
#include <libkmod.h>
#include <solv/pool.h>
#include <solv/repo.h>

#include "macros.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_ctx *, kmod_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_module *, kmod_module_unref);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_list *, kmod_module_unref_list);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_list *, kmod_module_info_free_list);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_list *, kmod_module_symbols_free_list);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_list *, kmod_module_versions_free_list);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kmod_list *, kmod_module_dependency_symbols_free_list);
DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pool *, pool_free);
