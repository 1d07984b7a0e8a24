/* libFuzzer target for the JSON writer's string escaping, where record fields and paths from a
 * tampered state dir end up (`ls --json`, `inspect --json`): for any bytes, the output is a valid
 * JSON string body whose value is the input with each byte of invalid UTF-8 as U+FFFD. */
#include <string.h>

#include "fuzz.h"
#include "json.h"

/* Length of a valid UTF-8 sequence at s (of n bytes), 0 if none: decoded and range-checked. */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | cp >> 12);
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

/* Decodes a JSON string body (RFC 8259) into out; false if it is not one. */
static bool json_decode(const char *in, size_t n, char *out, size_t *ret_len)
{
	size_t o = 0, i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)in[i];
		size_t len;

		if (c == '"' || c < 0x20)
			return false;
		if (c != '\\') {
			len = utf8_valid((const unsigned char *)in + i, n - i);
			if (!len)
				return false;
			memcpy(out + o, in + i, len);
			o += len;
			i += len;
			continue;
		}
		if (i + 1 >= n)
			return false;
		switch (in[i + 1]) {
		case '"':
		case '\\':
		case '/':
			out[o++] = in[i + 1];
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 'b':
			out[o++] = '\b';
			break;
		case 'f':
			out[o++] = '\f';
			break;
		case 'u': {
			unsigned cp;

			if (i + 6 > n || strspn(in + i + 2, "0123456789abcdefABCDEF") < 4 ||
			    sscanf(in + i + 2, "%4x", &cp) != 1 || (cp >= 0xd800 && cp <= 0xdfff))
				return false;
			o += put_utf8(out + o, cp);
			i += 4;
			break;
		}
		default:
			return false;
		}
		i += 2;
	}
	*ret_len = o;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size), *text = NULL, *decoded, *expected;
	size_t len = 0, n, e = 0, got;
	FILE *mem;

	if (!s)
		return 0;
	n = strlen(s);
	mem = open_memstream(&text, &len);
	FUZZ_CHECK(mem);
	json_write_escaped(mem, s);
	FUZZ_CHECK(fclose(mem) == 0);
	decoded = malloc(len * 3 + 1);
	expected = malloc(n * 3 + 1);
	FUZZ_CHECK(decoded && expected);
	for (size_t i = 0; i < n;) {
		size_t l = utf8_valid((const unsigned char *)s + i, n - i);

		if (l) {
			memcpy(expected + e, s + i, l);
			e += l;
			i += l;
		} else {
			memcpy(expected + e, "\xef\xbf\xbd", 3);
			e += 3;
			i++;
		}
	}
	FUZZ_CHECK(json_decode(text, len, decoded, &got));
	FUZZ_CHECK(got == e && memcmp(decoded, expected, e) == 0);
	free(expected);
	free(decoded);
	free(text);
	free(s);
	return 0;
}
