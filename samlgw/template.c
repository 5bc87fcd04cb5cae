/* Loading samlgw's page templates: reads templates/NAME.html, style.css, script.js and
 * i18n/CODE.txt once, parses every template into a tree, checks messages, partials, the
 * layout and the pages the caller will render, and offers the read-only set to any number
 * of rendering threads. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "template_int.h"
#include "util.h"

const char *tmpl_error(const char *fmt, ...)
{
	static _Thread_local char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

void templates_free(struct templates *T)
{
	if (T == NULL)
		return;
	for (size_t i = 0; i < T->n; i++) {
		tmpl_block_free(&T->t[i].root);
		free(T->t[i].name);
		free(T->t[i].file);
		free(T->t[i].src);
	}
	free(T->t);
	tmpl_messages_free(T);
	tmpl_vars_free(T->builtins);
	free(T->csp);
	free(T->csp_images);
	free(T);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && strcmp(s + n - k, suffix) == 0;
}

static char *file_label(const char *origin, const char *name)
{
	return origin != NULL ? xasprintf("%s/%s", origin, name) : xstrdup(name);
}

/* The line of data's byte at offset, for messages. */
static unsigned line_at(const char *data, size_t offset)
{
	unsigned line = 1;
	for (size_t i = 0; i < offset; i++)
		line += data[i] == '\n';
	return line;
}

/* A file's text must fit the cap and hold no NUL byte. */
static int check_text(const char *label, const struct tmpl_file *f, const char **error_r)
{
	if (f->len > TMPL_FILE_MAX) {
		*error_r = tmpl_error("%s:1: larger than %d bytes", label, TMPL_FILE_MAX);
		return -1;
	}
	const char *nul = memchr(f->data, '\0', f->len);
	if (nul != NULL) {
		*error_r = tmpl_error("%s:%u: NUL byte", label,
				      line_at(f->data, (size_t)(nul - f->data)));
		return -1;
	}
	return 0;
}

/* style.css and script.js go into <style> and <script> as they are, so they must not be
 * able to end those elements or open a comment there. */
static int add_asset(struct templates *T, const char *label, const char *var,
		     const struct tmpl_file *f, const char **error_r)
{
	if (tmpl_vars_find(T->builtins, var) != NULL) {
		*error_r = tmpl_error("%s:1: given twice", label);
		return -1;
	}
	for (size_t i = 0; i + 1 < f->len; i++) {
		if (f->data[i] == '<' && (f->data[i + 1] == '/' || f->data[i + 1] == '!')) {
			*error_r = tmpl_error("%s:%u: `<%c` may not appear in inline %s", label,
					      line_at(f->data, i), f->data[i + 1], var);
			return -1;
		}
	}
	char *text = tmpl_memdup(f->data, f->len);
	tmpl_set_html(T->builtins, var, text);
	free(text);
	return 0;
}

static int add_template(struct templates *T, const char *label, const struct tmpl_file *f,
			const char **error_r)
{
	size_t n = strlen(f->name) - strlen(".html");
	if (!tmpl_name_valid(f->name, n) || memchr(f->name, '/', n) != NULL) {
		*error_r = tmpl_error("%s:1: not a valid template name", label);
		return -1;
	}
	if (T->n >= TMPL_FILES_MAX) {
		*error_r = tmpl_error("%s:1: more than %d templates", label, TMPL_FILES_MAX);
		return -1;
	}
	for (size_t i = 0; i < T->n; i++) {
		if (strlen(T->t[i].name) == n && memcmp(T->t[i].name, f->name, n) == 0) {
			*error_r = tmpl_error("%s:1: given twice", label);
			return -1;
		}
	}
	T->t = xrealloc(T->t, (T->n + 1) * sizeof(*T->t));
	struct tmpl *t = &T->t[T->n++];
	memset(t, 0, sizeof(*t));
	t->name = xstrndup(f->name, n);
	t->file = xstrdup(label);
	t->src = tmpl_memdup(f->data, f->len);
	t->src_len = f->len;
	return 0;
}

static const struct tmpl *find_page(const struct templates *T, const char *name)
{
	for (size_t i = 0; i < T->n; i++) {
		if (strcmp(T->t[i].name, name) == 0)
			return &T->t[i];
	}
	return NULL;
}

static bool uses_content(const struct tmpl_block *b)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct tmpl_node *node = &b->v[i];
		if (node->type == NODE_RAW && strcmp(node->name, "content") == 0)
			return true;
		if (uses_content(&node->body) || uses_content(&node->alt))
			return true;
	}
	return false;
}

static void hash_source(char *out, size_t out_size, const char *kind, const char *text)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
	if (EVP_Digest(text, strlen(text), md, &md_len, EVP_sha256(), NULL) != 1)
		abort(); /* SHA-256 is always available */
	EVP_EncodeBlock(b64, md, (int)md_len);
	snprintf(out, out_size, "%s 'sha256-%s'", kind, (const char *)b64);
}

static void make_csp(struct templates *T)
{
	char style[128], script[128];
	hash_source(style, sizeof(style), "style-src",
		    tmpl_vars_find(T->builtins, "stylesheet")->str);
	hash_source(script, sizeof(script), "script-src",
		    tmpl_vars_find(T->builtins, "script")->str);
	T->csp = xasprintf("default-src 'none'; %s; %s; img-src 'self' data:; "
			   "base-uri 'none'; frame-ancestors 'none'",
			   style, script);
	T->csp_images = xasprintf("default-src 'none'; %s; %s; img-src 'self' data: https:; "
				  "base-uri 'none'; frame-ancestors 'none'",
				  style, script);
}

enum file_kind {
	FILE_LANG,
	FILE_STYLE,
	FILE_SCRIPT,
	FILE_TEMPLATE,
	FILE_OTHER,
};

static enum file_kind classify(const char *name)
{
	if (strncmp(name, "i18n/", 5) == 0 && strrchr(name, '/') == name + 4 &&
	    ends_with(name, ".txt") && strlen(name) > 9)
		return FILE_LANG;
	if (strcmp(name, "style.css") == 0)
		return FILE_STYLE;
	if (strcmp(name, "script.js") == 0)
		return FILE_SCRIPT;
	if (ends_with(name, ".html"))
		return FILE_TEMPLATE;
	return FILE_OTHER;
}

static int add_file(struct templates *T, const char *origin, const struct tmpl_file *f,
		    enum file_kind kind, const char **error_r)
{
	char *label = file_label(origin, f->name);
	int ret = -1;
	if (check_text(label, f, error_r) < 0)
		goto out;
	switch (kind) {
	case FILE_LANG: {
		char *code = xstrndup(f->name + 5, strlen(f->name + 5) - 4);
		ret = tmpl_messages_add(T, label, code, f->data, f->len, error_r);
		free(code);
		break;
	}
	case FILE_STYLE:
		ret = add_asset(T, label, "stylesheet", f, error_r);
		break;
	case FILE_SCRIPT:
		ret = add_asset(T, label, "script", f, error_r);
		break;
	case FILE_TEMPLATE:
		ret = add_template(T, label, f, error_r);
		break;
	case FILE_OTHER:
		*error_r = tmpl_error("%s:1: not a template (.html), style.css, script.js or "
				      "translation (i18n/*.txt)",
				      label);
		break;
	}
out:
	free(label);
	return ret;
}

int templates_load_files(const char *origin, const struct tmpl_file *files, size_t n,
			 struct templates **templates_r, const char **error_r)
{
	struct templates *T = xcalloc(1, sizeof(*T));
	T->builtins = tmpl_vars_new();
	char *label = NULL;
	/* The default language first: its keys are the ones every language must have. */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(files[i].name, "i18n/en.txt") == 0 &&
		    add_file(T, origin, &files[i], FILE_LANG, error_r) < 0)
			goto fail;
	}
	for (int pass = 0; pass < 2; pass++) {
		/* translations and assets, then templates (which use the message keys) */
		for (size_t i = 0; i < n; i++) {
			enum file_kind kind = classify(files[i].name);
			if (strcmp(files[i].name, "i18n/en.txt") == 0 || (pass == 0) == (kind == FILE_TEMPLATE))
				continue;
			if (kind == FILE_LANG && T->n_langs == 0) {
				label = file_label(origin, files[i].name);
				*error_r = tmpl_error("%s:1: i18n/en.txt, the default language, is "
						      "missing",
						      label);
				goto fail;
			}
			if (add_file(T, origin, &files[i], kind, error_r) < 0)
				goto fail;
		}
		if (pass == 0 && tmpl_messages_check(T, error_r) < 0)
			goto fail;
	}
	static const char *const assets[][2] = {{"stylesheet", "style.css"}, {"script", "script.js"}};
	for (size_t i = 0; i < ARRAY_SIZE(assets); i++) {
		if (tmpl_vars_find(T->builtins, assets[i][0]) == NULL) {
			label = file_label(origin, assets[i][1]);
			*error_r = tmpl_error("%s:1: missing", label);
			goto fail;
		}
	}
	const struct tmpl *layout = find_page(T, "layout");
	if (layout == NULL) {
		label = file_label(origin, "layout.html");
		*error_r = tmpl_error("%s:1: missing", label);
		goto fail;
	}
	for (size_t i = 0; i < T->n; i++) {
		if (tmpl_parse(T, &T->t[i], error_r) < 0)
			goto fail;
	}
	if (tmpl_link(T, error_r) < 0)
		goto fail;
	layout = find_page(T, "layout");
	if (!uses_content(&layout->root)) {
		*error_r = tmpl_error("%s:1: the layout never shows {{{content}}}", layout->file);
		goto fail;
	}
	make_csp(T);
	*templates_r = T;
	return 0;
fail:
	free(label);
	templates_free(T);
	return -1;
}

struct file_list {
	struct tmpl_file *v;
	char **data;
	char **names;
	size_t n;
};

static void file_list_free(struct file_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->data[i]);
		free(l->names[i]);
	}
	free(l->v);
	free(l->data);
	free(l->names);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the files of folder dir/sub (sub may be "") that classify() accepts. */
static int read_folder(const char *dir, const char *sub, struct file_list *l,
		       const char **error_r)
{
	char *path = *sub != '\0' ? xasprintf("%s/%s", dir, sub) : xstrdup(dir);
	char **names = NULL;
	size_t n = 0;
	int ret = -1;
	DIR *d = opendir(path);
	if (d == NULL) {
		*error_r = tmpl_error("%s:1: cannot open the folder", path);
		goto out;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *name = *sub != '\0' ? xasprintf("%s/%s", sub, e->d_name) : xstrdup(e->d_name);
		enum file_kind kind = classify(name);
		if (kind == FILE_OTHER || (*sub == '\0') == (kind == FILE_LANG)) {
			free(name);
			continue;
		}
		if (n >= 2 * TMPL_FILES_MAX) {
			free(name);
			*error_r = tmpl_error("%s:1: too many files", path);
			goto out;
		}
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = name;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char *file = xasprintf("%s/%s", dir, names[i]);
		char *data = NULL;
		size_t size = 0;
		const char *error;
		int r = read_file_capped(file, TMPL_FILE_MAX, &data, &size, &error);
		if (r < 0) {
			*error_r = tmpl_error("%s:1: %s", file, error);
			free(file);
			goto out;
		}
		free(file);
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->data = xrealloc(l->data, (l->n + 1) * sizeof(*l->data));
		l->names = xrealloc(l->names, (l->n + 1) * sizeof(*l->names));
		l->names[l->n] = names[i];
		names[i] = NULL;
		l->data[l->n] = data;
		l->v[l->n] = (struct tmpl_file){.name = l->names[l->n], .data = data, .len = size};
		l->n++;
	}
	ret = 0;
out:
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(path);
	return ret;
}

int templates_load_pages(const char *dir, const char *const *pages, size_t n_pages,
			 struct templates **templates_r, const char **error_r)
{
	struct file_list l = {0};
	struct templates *T = NULL;
	int ret = -1;
	if (read_folder(dir, "", &l, error_r) < 0 || read_folder(dir, "i18n", &l, error_r) < 0 ||
	    templates_load_files(dir, l.v, l.n, &T, error_r) < 0)
		goto out;
	for (size_t i = 0; i < n_pages; i++) {
		if (find_page(T, pages[i]) == NULL) {
			*error_r = tmpl_error("%s/%s.html:1: missing (samlgw renders this page)", dir,
					      pages[i]);
			goto out;
		}
	}
	*templates_r = T;
	T = NULL;
	ret = 0;
out:
	templates_free(T);
	file_list_free(&l);
	return ret;
}

int templates_load(const char *dir, struct templates **templates_r, const char **error_r)
{
	return templates_load_pages(dir, NULL, 0, templates_r, error_r);
}

const char *templates_text(const struct templates *T, const char *lang, const char *key)
{
	const struct tmpl_lang *l = tmpl_lang_find(T, lang != NULL ? lang : "en");
	if (l == NULL)
		return NULL;
	for (size_t k = 0; k < T->n_keys; k++) {
		if (strcmp(T->keys[k], key) == 0)
			return l->text[k];
	}
	return NULL;
}

const char *templates_csp(const struct templates *T)
{
	return T->csp;
}

const char *templates_csp_images(const struct templates *T)
{
	return T->csp_images;
}

int templates_render(const struct templates *T, const char *page, const char *lang,
		     const struct tmpl_vars *vars, char **html_r, size_t *len_r,
		     const char **error_r)
{
	const struct tmpl_lang *l = tmpl_lang_find(T, lang != NULL ? lang : "en");
	if (l == NULL) {
		*error_r = tmpl_error("unknown language `%.16s`", lang);
		return -1;
	}
	const struct tmpl *t = find_page(T, page);
	if (t == NULL || strcmp(page, "layout") == 0) {
		*error_r = tmpl_error("unknown page `%.64s`", page);
		return -1;
	}
	return tmpl_render_page(T, t, find_page(T, "layout"), l, vars, html_r, len_r, error_r);
}
