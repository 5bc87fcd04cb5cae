/* Translations of the page templates: templates/i18n/CODE.txt files of `key = text` lines
 * (blank lines and lines starting with # are ignored), the check that every language has
 * every key, and the choice of a language from an Accept-Language header (RFC 9110
 * §12.5.4: q-values, language ranges matched by prefix, `*`). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "template_int.h"
#include "util.h"

#define ACCEPT_LANGUAGE_MAX 4096
#define ACCEPT_ENTRIES_MAX 64

const struct tmpl_lang *tmpl_lang_find(const struct templates *T, const char *code)
{
	for (size_t i = 0; i < T->n_langs; i++) {
		if (strcmp(T->langs[i].code, code) == 0)
			return &T->langs[i];
	}
	return NULL;
}

static ssize_t key_index(const struct templates *T, const char *key, size_t len)
{
	for (size_t i = 0; i < T->n_keys; i++) {
		if (strlen(T->keys[i]) == len && memcmp(T->keys[i], key, len) == 0)
			return (ssize_t)i;
	}
	return -1;
}

static void lang_free(struct tmpl_lang *l, size_t n_keys)
{
	for (size_t k = 0; k < n_keys; k++) {
		free(l->text[k]);
		free(l->html[k]);
	}
	free(l->text);
	free(l->html);
	free(l->line);
	free(l->code);
	free(l->file);
}

void tmpl_messages_free(struct templates *T)
{
	for (size_t i = 0; i < T->n_langs; i++)
		lang_free(&T->langs[i], T->n_keys);
	free(T->langs);
	for (size_t k = 0; k < T->n_keys; k++)
		free(T->keys[k]);
	free(T->keys);
	T->langs = NULL;
	T->keys = NULL;
	T->n_langs = T->n_keys = 0;
}

/* Room for one more key in every language read so far. */
static void add_key(struct templates *T, const char *key, size_t len)
{
	T->keys = xrealloc(T->keys, (T->n_keys + 1) * sizeof(*T->keys));
	T->keys[T->n_keys] = tmpl_memdup(key, len);
	for (size_t i = 0; i < T->n_langs; i++) {
		struct tmpl_lang *l = &T->langs[i];
		l->text = xrealloc(l->text, (T->n_keys + 1) * sizeof(*l->text));
		l->html = xrealloc(l->html, (T->n_keys + 1) * sizeof(*l->html));
		l->line = xrealloc(l->line, (T->n_keys + 1) * sizeof(*l->line));
		l->text[T->n_keys] = NULL;
		l->html[T->n_keys] = NULL;
		l->line[T->n_keys] = 0;
	}
	T->n_keys++;
}

static int parse_line(struct templates *T, struct tmpl_lang *l, bool is_default,
		      const char *s, size_t len, unsigned lineno, const char **error_r)
{
	const char *line = s;
	size_t n = len;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	if (n == 0 || *line == '#')
		return 0;
	const char *eq = memchr(line, '=', n);
	if (eq == NULL) {
		*error_r = tmpl_error("%s:%u: expected `key = text`", l->file, lineno);
		return -1;
	}
	size_t klen = (size_t)(eq - line);
	while (klen > 0 && (line[klen - 1] == ' ' || line[klen - 1] == '\t'))
		klen--;
	const char *text = eq + 1;
	size_t tlen = n - (size_t)(text - line);
	while (tlen > 0 && (*text == ' ' || *text == '\t')) {
		text++;
		tlen--;
	}
	while (tlen > 0 && (text[tlen - 1] == ' ' || text[tlen - 1] == '\t'))
		tlen--;
	if (!tmpl_name_valid(line, klen)) {
		*error_r = tmpl_error("%s:%u: not a valid message key", l->file, lineno);
		return -1;
	}
	if (tlen == 0 || tlen > TMPL_MESSAGE_MAX || !utf8_printable(text, tlen)) {
		*error_r = tmpl_error("%s:%u: message `%.*s` must be 1 to %d bytes of printable "
				      "UTF-8",
				      l->file, lineno, (int)klen, line, TMPL_MESSAGE_MAX);
		return -1;
	}
	ssize_t k = key_index(T, line, klen);
	if (k < 0 && is_default) {
		if (T->n_keys >= TMPL_MESSAGES_MAX) {
			*error_r = tmpl_error("%s:%u: more than %d messages", l->file, lineno,
					      TMPL_MESSAGES_MAX);
			return -1;
		}
		add_key(T, line, klen);
		k = (ssize_t)T->n_keys - 1;
	} else if (k < 0) {
		*error_r = tmpl_error("%s:%u: message `%.*s` is not in %s", l->file, lineno,
				      (int)klen, line, T->langs[0].file);
		return -1;
	}
	if (l->text[k] != NULL) {
		*error_r = tmpl_error("%s:%u: message `%.*s` already defined at line %u", l->file,
				      lineno, (int)klen, line, l->line[k]);
		return -1;
	}
	l->text[k] = tmpl_memdup(text, tlen);
	l->html[k] = tmpl_escape_dup(text, tlen);
	l->line[k] = lineno;
	return 0;
}

static bool code_valid(const char *code)
{
	/* a primary subtag of 2-3 letters, optionally one more subtag, all lowercase */
	size_t n = strlen(code), i = 0;
	while (i < n && code[i] >= 'a' && code[i] <= 'z')
		i++;
	if (i < 2 || i > 3)
		return false;
	if (i == n)
		return true;
	if (code[i] != '-' || n - i - 1 < 1 || n > TMPL_LANG_MAX)
		return false;
	for (i++; i < n; i++) {
		if (!((code[i] >= 'a' && code[i] <= 'z') || (code[i] >= '0' && code[i] <= '9')))
			return false;
	}
	return true;
}

int tmpl_messages_add(struct templates *T, const char *file, const char *code,
		      const char *data, size_t len, const char **error_r)
{
	bool is_default = T->n_langs == 0;
	if (!code_valid(code)) {
		*error_r = tmpl_error("%s:1: `%s` is not a lowercase language code", file, code);
		return -1;
	}
	if (is_default != (strcmp(code, "en") == 0)) {
		*error_r = tmpl_error("%s:1: the default language, en, must be read first", file);
		return -1;
	}
	if (tmpl_lang_find(T, code) != NULL) {
		*error_r = tmpl_error("%s:1: language `%s` given twice", file, code);
		return -1;
	}
	if (T->n_langs >= TMPL_FILES_MAX) {
		*error_r = tmpl_error("%s:1: more than %d languages", file, TMPL_FILES_MAX);
		return -1;
	}
	T->langs = xrealloc(T->langs, (T->n_langs + 1) * sizeof(*T->langs));
	struct tmpl_lang *l = &T->langs[T->n_langs++];
	memset(l, 0, sizeof(*l));
	l->code = xstrdup(code);
	l->file = xstrdup(file);
	size_t slots = T->n_keys == 0 ? 1 : T->n_keys;
	l->text = xcalloc(slots, sizeof(*l->text));
	l->html = xcalloc(slots, sizeof(*l->html));
	l->line = xcalloc(slots, sizeof(*l->line));
	unsigned lineno = 1;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (data + pos)) : len - pos;
		if (parse_line(T, l, is_default, data + pos, n, lineno, error_r) < 0)
			return -1;
		pos += n + 1;
		lineno++;
	}
	if (is_default && T->n_keys == 0) {
		*error_r = tmpl_error("%s:1: no messages", file);
		return -1;
	}
	return 0;
}

int tmpl_messages_check(const struct templates *T, const char **error_r)
{
	if (T->n_langs == 0) {
		*error_r = tmpl_error("i18n/en.txt:1: the default language's messages are missing");
		return -1;
	}
	for (size_t i = 1; i < T->n_langs; i++) {
		for (size_t k = 0; k < T->n_keys; k++) {
			if (T->langs[i].text[k] == NULL) {
				*error_r = tmpl_error("%s:%u: message `%s` is missing from %s",
						      T->langs[0].file, T->langs[0].line[k],
						      T->keys[k], T->langs[i].file);
				return -1;
			}
		}
	}
	return 0;
}

/* One entry of Accept-Language: its range and q-value (0..1000). Returns false for an
 * entry that cannot be read, which is then skipped. */
static bool parse_entry(const char *s, size_t len, char range[TMPL_LANG_MAX + 1],
			unsigned *q_r)
{
	const char *semi = memchr(s, ';', len);
	size_t rlen = semi != NULL ? (size_t)(semi - s) : len;
	while (rlen > 0 && (s[rlen - 1] == ' ' || s[rlen - 1] == '\t'))
		rlen--;
	if (rlen == 0 || rlen > TMPL_LANG_MAX)
		return false;
	for (size_t i = 0; i < rlen; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '*'))
			return false;
		range[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	range[rlen] = '\0';
	*q_r = 1000;
	if (semi == NULL)
		return true;
	/* parameters: only q matters; q = 0 / 1 / 0.ddd / 1.000 */
	const char *p = semi + 1, *end = s + len;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (end - p < 3 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
		return false;
	p += 2;
	unsigned q = 0;
	if (*p == '0' || *p == '1') {
		q = (unsigned)(*p - '0') * 1000;
		p++;
	} else {
		return false;
	}
	if (p < end && *p == '.') {
		p++;
		unsigned scale = 100;
		while (p < end && *p >= '0' && *p <= '9' && scale > 0) {
			q += (unsigned)(*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p != end || q > 1000)
		return false;
	*q_r = q;
	return true;
}

/* Our language for a range: exact, or ours is a prefix of it ("de" for "de-ch"), or the
 * range is a prefix of ours ("pt" for "pt-br"); `*` means the default. */
static const struct tmpl_lang *match(const struct templates *T, const char *range)
{
	if (strcmp(range, "*") == 0)
		return &T->langs[0];
	const struct tmpl_lang *l = tmpl_lang_find(T, range);
	if (l != NULL)
		return l;
	size_t rl = strlen(range);
	for (size_t i = 0; i < T->n_langs; i++) {
		const char *c = T->langs[i].code;
		size_t cl = strlen(c);
		if (cl < rl && strncmp(range, c, cl) == 0 && range[cl] == '-')
			return &T->langs[i];
	}
	for (size_t i = 0; i < T->n_langs; i++) {
		const char *c = T->langs[i].code;
		if (strlen(c) > rl && strncmp(range, c, rl) == 0 && c[rl] == '-')
			return &T->langs[i];
	}
	return NULL;
}

const char *templates_language(const struct templates *T, const char *accept_language)
{
	const struct tmpl_lang *best = NULL;
	unsigned best_q = 0;
	if (accept_language == NULL)
		return T->langs[0].code;
	size_t len = strnlen(accept_language, ACCEPT_LANGUAGE_MAX + 1);
	if (len > ACCEPT_LANGUAGE_MAX)
		return T->langs[0].code;
	size_t pos = 0;
	for (unsigned entries = 0; pos < len && entries < ACCEPT_ENTRIES_MAX; entries++) {
		const char *s = accept_language + pos;
		const char *comma = memchr(s, ',', len - pos);
		size_t n = comma != NULL ? (size_t)(comma - s) : len - pos;
		pos += n + 1;
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		char range[TMPL_LANG_MAX + 1];
		unsigned q;
		if (n == 0 || !parse_entry(s, n, range, &q) || q == 0)
			continue;
		const struct tmpl_lang *l = match(T, range);
		if (l != NULL && q > best_q) {
			best = l;
			best_q = q;
		}
	}
	return best != NULL ? best->code : T->langs[0].code;
}
