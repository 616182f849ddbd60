/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "fetch.h"
#include "fileio.h"
#include "sha256.h"
#include "tests.h"

static void hex_of(const char *s, size_t n, char ret[static SHA256_HEX_SIZE])
{
	sha256_buffer_hex(s, n, ret);
}

TEST(sha256_known_vectors)
{
	char h[SHA256_HEX_SIZE];

	hex_of("", 0, h);
	ASSERT_STREQ(h,
		     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hex_of("abc", 3, h);
	ASSERT_STREQ(h,
		     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
	ASSERT_STREQ(h,
		     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	hex_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
	       "nopqrlmnopqrsmnopqrstnopqrstu",
	       112, h);
	ASSERT_STREQ(h,
		     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(sha256_million_a_streamed)
{
	char chunk[1000], h[SHA256_HEX_SIZE];
	Sha256 s;

	memset(chunk, 'a', sizeof(chunk));
	sha256_init(&s);
	/* odd chunk sizes cross block boundaries */
	for (size_t done = 0, k = 1; done < 1000000; done += k, k = k % 997 + 1) {
		if (done + k > 1000000)
			k = 1000000 - done;
		sha256_update(&s, chunk, k);
	}
	sha256_finish_hex(&s, h);
	ASSERT_STREQ(h,
		     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(sha256_padding_edges)
{
	/* 55, 56, 63, 64 and 65 bytes: compared against streamed single bytes */
	static const size_t lengths[] = { 55, 56, 63, 64, 65, 119, 120 };
	char buf[128], a[SHA256_HEX_SIZE], b[SHA256_HEX_SIZE];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + 3);
	for (size_t i = 0; i < ELEMENTSOF(lengths); i++) {
		Sha256 s;

		sha256_buffer_hex(buf, lengths[i], a);
		sha256_init(&s);
		for (size_t j = 0; j < lengths[i]; j++)
			sha256_update(&s, buf + j, 1);
		sha256_finish_hex(&s, b);
		ASSERT_STREQ(a, b);
	}
	sha256_buffer_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 55,
			  a);
	ASSERT_STREQ(a,
		     "aa353e009edbaebfc6e494c8d847696896cb8b398e0173a4b5c1b636292d87c7");
}

TEST(sha256_hex_valid)
{
	ASSERT_TRUE(sha256_hex_valid(
		"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	ASSERT_TRUE(!sha256_hex_valid("e3b0"));
	ASSERT_TRUE(!sha256_hex_valid(
		"g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	ASSERT_TRUE(!sha256_hex_valid(
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555"));
	ASSERT_TRUE(!sha256_hex_valid(NULL));
}

TEST(sha256_file_and_fetch_file_url)
{
	char dir[] = "/tmp/test-sha256.XXXXXX", h[SHA256_HEX_SIZE];
	_cleanup_free_ char *src = NULL, *dst = NULL, *url = NULL, *err = NULL,
			    *data = NULL;
	FetchOptions o = {
		.sha256 =
			"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	};
	size_t size = 0;

	ASSERT_TRUE(mkdtemp(dir));
	src = path_join(dir, "src");
	dst = path_join(dir, "dst");
	ASSERT_OK(write_file_atomic(src, "abc", 3, 0644));
	ASSERT_OK(sha256_file(src, h));
	ASSERT_STREQ(h, o.sha256);
	ASSERT_TRUE(asprintf(&url, "file://%s", src) > 0);

	ASSERT_OK(fetch_to_file(url, dst, &o, &err));
	ASSERT_OK(sha256_file(dst, h));
	ASSERT_STREQ(h, o.sha256);
	ASSERT_OK(fetch_to_memory(url, &o, &data, &size, NULL));
	ASSERT_EQ(size, 3);
	ASSERT_STREQ(data, "abc");
	(void)unlink(dst);

	/* a checksum mismatch leaves nothing behind */
	o.sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	ASSERT_ERROR(fetch_to_file(url, dst, &o, &err), EBADMSG);
	ASSERT_TRUE(err && strstr(err, "checksum mismatch"));
	ASSERT_TRUE(access(dst, F_OK) < 0);
	free(err);
	err = NULL;

	/* size cap */
	o = (FetchOptions){ .max_size = 2 };
	ASSERT_ERROR(fetch_to_file(url, dst, &o, &err), EFBIG);
	ASSERT_TRUE(access(dst, F_OK) < 0);
	free(err);
	err = NULL;

	/* missing file, unsupported scheme */
	free(url);
	ASSERT_TRUE(asprintf(&url, "file://%s/missing", dir) > 0);
	ASSERT_ERROR(fetch_to_file(url, dst, NULL, NULL), ENOENT);
	ASSERT_ERROR(fetch_to_file("ftp://127.0.0.1/x", dst, NULL, NULL), EPROTO);

	(void)unlink(src);
	ASSERT_OK(rmdir(dir));
}
