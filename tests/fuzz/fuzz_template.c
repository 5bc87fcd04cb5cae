/* Fuzz target: the template loader, parser and renderer, and Accept-Language parsing.
 * The input is a template set: sections that start with a line "@@NAME" (NAME as in
 * struct tmpl_file: "page.html", "i18n/de.txt", ...); text before the first section is the
 * template "page.html". Files the input leaves out get small defaults. Every page that
 * loads is rendered in every language with a fixed set of variables. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* strndup over input that is not NUL-terminated */
static char *copy(const char *s, size_t n)
{
	char *c = calloc(1, n + 1);
	memcpy(c, s, n);
	return c;
}

#define FILES_MAX 16

static const struct tmpl_file defaults[] = {
	{"i18n/en.txt", "a = A <&>\nb = B\n", 16},
	{"i18n/de.txt", "a = Ä\nb = B\n", 13},
	{"style.css", "body{}", 6},
	{"script.js", "1;", 2},
	{"layout.html", "<html lang=\"{{lang}}\">{{{content}}}</html>", 42},
};

static struct tmpl_vars *fixed_vars(void)
{
	struct tmpl_vars *v = tmpl_vars_new();
	tmpl_set(v, "x", "<&\"'`>");
	tmpl_set(v, "name", "outer");
	tmpl_set(v, "empty", "");
	tmpl_set_html(v, "h", "<b>bold</b>");
	tmpl_set_bool(v, "t", true);
	tmpl_set_bool(v, "f", false);
	tmpl_set_list(v, "none");
	for (int i = 0; i < 2; i++) {
		struct tmpl_vars *item = tmpl_list_add(v, "items");
		tmpl_set(item, "name", i == 0 ? "first" : "second");
		struct tmpl_vars *sub = tmpl_list_add(item, "sub");
		tmpl_set_bool(sub, "t", false);
		tmpl_set(sub, "y", "inner");
	}
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	const char *text = (const char *)data;
	struct tmpl_file files[FILES_MAX + 5];
	char *names[FILES_MAX] = {0};
	size_t n = 0, pos = 0;
	const char *name = "page.html";
	for (;;) {
		size_t hdr = size;
		for (size_t i = pos; i + 1 < size; i++) {
			if ((i == 0 || text[i - 1] == '\n') && text[i] == '@' && text[i + 1] == '@') {
				hdr = i;
				break;
			}
		}
		files[n++] = (struct tmpl_file){.name = name, .data = text + pos, .len = hdr - pos};
		if (hdr == size || n >= FILES_MAX)
			break;
		const char *eol = memchr(text + hdr, '\n', size - hdr);
		size_t name_len = (size_t)((eol != NULL ? eol : text + size) - (text + hdr + 2));
		names[n] = copy(text + hdr + 2, name_len > 64 ? 64 : name_len);
		name = names[n];
		pos = eol != NULL ? (size_t)(eol - text) + 1 : size;
	}
	for (size_t d = 0; d < sizeof(defaults) / sizeof(defaults[0]); d++) {
		bool given = false;
		for (size_t i = 0; i < n; i++)
			given |= strcmp(files[i].name, defaults[d].name) == 0;
		if (!given)
			files[n++] = defaults[d];
	}

	struct templates *T = NULL;
	const char *error = NULL;
	if (templates_load_files("fuzz", files, n, &T, &error) < 0) {
		if (error == NULL || strncmp(error, "fuzz/", 5) != 0)
			abort(); /* a refusal always names the file */
		goto out;
	}
	if (strstr(templates_csp(T), "'unsafe-inline'") != NULL)
		abort();
	struct tmpl_vars *vars = fixed_vars();
	static const char *const langs[] = {"en", "de"};
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(files[i].name);
		if (len <= 5 || strcmp(files[i].name + len - 5, ".html") != 0 ||
		    strcmp(files[i].name, "layout.html") == 0)
			continue;
		char *page = strndup(files[i].name, len - 5);
		for (size_t l = 0; l < 2; l++) {
			/* every language has every key of en */
			if ((templates_text(T, "en", "a") == NULL) !=
			    (templates_text(T, langs[l], "a") == NULL))
				abort();
			char *html = NULL;
			size_t html_len = 0;
			if (templates_render(T, page, langs[l], vars, &html, &html_len, &error) == 0) {
				if (strlen(html) != html_len)
					abort();
				free(html);
			} else if (html != NULL) {
				abort();
			}
		}
		free(page);
	}
	tmpl_vars_free(vars);
	/* the input as an Accept-Language header */
	char *header = copy(text, size > 512 ? 512 : size);
	const char *lang = templates_language(T, header);
	if (lang == NULL || (templates_text(T, lang, "a") == NULL) !=
				    (templates_text(T, "en", "a") == NULL))
		abort();
	free(header);
	templates_free(T);
out:
	for (size_t i = 0; i < FILES_MAX; i++)
		free(names[i]);
	return 0;
}
