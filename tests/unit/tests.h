/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A small test harness: TEST(name) { ... } registers a test; main() runs them all and prints
 * "PASS <file>:<name>" / "FAIL <file>:<name>: <why>" / "SKIP ..." lines. A test returns
 * early with SKIP(why); a binary whose every test skipped exits 77. */

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macros.h"

typedef struct TestCase {
	const char *name;
	void (*fn)(void);
} TestCase;

#define MAX_TESTS 256
extern TestCase test_cases[MAX_TESTS];
extern size_t n_test_cases;
extern jmp_buf test_jmp;
extern char test_why[512];
extern int test_result; /* 0 pass, 1 fail, 2 skip */

#define TEST(n)                                                           \
	static void test_##n(void);                                       \
	__attribute__((constructor)) static void register_##n(void)       \
	{                                                                 \
		if (n_test_cases < MAX_TESTS)                             \
			test_cases[n_test_cases++] = (TestCase){ #n, test_##n }; \
	}                                                                 \
	static void test_##n(void)

#define TEST_FAIL(...)                                                         \
	do {                                                                   \
		snprintf(test_why, sizeof(test_why), __VA_ARGS__);             \
		test_result = 1;                                               \
		longjmp(test_jmp, 1);                                          \
	} while (0)

#define SKIP(...)                                                              \
	do {                                                                   \
		snprintf(test_why, sizeof(test_why), __VA_ARGS__);             \
		test_result = 2;                                               \
		longjmp(test_jmp, 1);                                          \
	} while (0)

#define ASSERT_TRUE(e)                                                          \
	do {                                                                    \
		if (!(e))                                                       \
			TEST_FAIL("%s:%d: expected %s", __FILE__, __LINE__, #e); \
	} while (0)

#define ASSERT_OK(e)                                                                  \
	do {                                                                          \
		long _r = (long)(e);                                                  \
		if (_r < 0)                                                           \
			TEST_FAIL("%s:%d: %s failed: %s", __FILE__, __LINE__, #e,     \
				  errno_name_full((int)-_r));                          \
	} while (0)

#define ASSERT_ERROR(e, err)                                                          \
	do {                                                                          \
		long _r = (long)(e);                                                  \
		if (_r != -(long)(err))                                               \
			TEST_FAIL("%s:%d: %s returned %ld (%s), expected -%s", __FILE__, \
				  __LINE__, #e, _r, _r < 0 ? errno_name_full((int)-_r) : "ok", \
				  errno_name_full(err));                              \
	} while (0)

#define ASSERT_STREQ(a, b)                                                            \
	do {                                                                          \
		const char *_a = (a), *_b = (b);                                      \
		if (!streq_ptr(_a, _b))                                               \
			TEST_FAIL("%s:%d: %s is \"%s\", expected \"%s\"", __FILE__, __LINE__, \
				  #a, _a ?: "(null)", _b ?: "(null)");                 \
	} while (0)

#define ASSERT_EQ(a, b)                                                               \
	do {                                                                          \
		intmax_t _a = (intmax_t)(a), _b = (intmax_t)(b);                      \
		if (_a != _b)                                                         \
			TEST_FAIL("%s:%d: %s is %jd, expected %jd", __FILE__, __LINE__, #a, \
				  _a, _b);                                            \
	} while (0)
