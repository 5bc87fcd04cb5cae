/* The renderer: walks a parsed template with a stack of variable scopes and writes HTML,
 * escaping every value except trusted HTML, within TMPL_OUTPUT_MAX. It only reads the
 * loaded templates, so any number of threads may render at once. Buffers that held page
 * text (which may contain a token) are wiped before they are released. */
#include <stdlib.h>
#include <string.h>

#include "template_int.h"
#include "util.h"

#define SCOPES_MAX (TMPL_DEPTH_MAX + 4)

struct out {
	char *buf;
	size_t len, cap;
};

struct render {
	const struct templates *T;
	const struct tmpl_lang *lang;
	const struct tmpl_vars *scope[SCOPES_MAX];
	size_t n_scope;
	struct out out;
};

static void out_wipe(struct out *o)
{
	if (o->buf != NULL) {
		secret_wipe(o->buf, o->cap);
		free(o->buf);
	}
	o->buf = NULL;
	o->len = o->cap = 0;
}

/* Append n bytes; false once the page would exceed TMPL_OUTPUT_MAX. */
static bool out_put(struct out *o, const char *s, size_t n)
{
	if (n > TMPL_OUTPUT_MAX - o->len)
		return false;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap == 0 ? 4096 : o->cap;
		while (cap < o->len + n + 1)
			cap *= 2;
		if (cap > TMPL_OUTPUT_MAX + 1)
			cap = TMPL_OUTPUT_MAX + 1;
		/* A fresh buffer instead of realloc, so no unwiped copy is left behind. */
		char *buf = xcalloc(1, cap);
		if (o->len > 0)
			memcpy(buf, o->buf, o->len);
		out_wipe(&(struct out){.buf = o->buf, .cap = o->cap});
		o->buf = buf;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
	return true;
}

/* The escaped form of c, or NULL when c is written as is. Besides the five characters
 * that are special in text and attributes, the backtick (an attribute quote in old
 * browsers) and control characters HTML does not allow are replaced. */
static const char *escape_of(unsigned char c)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '"':
		return "&quot;";
	case '\'':
		return "&#39;";
	case '`':
		return "&#96;";
	case '\t':
	case '\n':
	case '\r':
		return NULL;
	default:
		return c < 0x20 || c == 0x7f ? "&#xFFFD;" : NULL;
	}
}

static bool out_escaped(struct out *o, const char *s, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		const char *e = escape_of((unsigned char)s[i]);
		if (e == NULL)
			continue;
		if (!out_put(o, s + start, i - start) || !out_put(o, e, strlen(e)))
			return false;
		start = i + 1;
	}
	return out_put(o, s + start, len - start);
}

char *tmpl_escape_dup(const char *s, size_t len)
{
	struct out o = {0};
	if (!out_escaped(&o, s, len) || !out_put(&o, "", 0))
		abort(); /* callers pass short, load-time text */
	return o.buf;
}

static const struct tmpl_var *lookup(const struct render *r, const char *name)
{
	for (size_t i = r->n_scope; i > 0; i--) {
		const struct tmpl_var *v = tmpl_vars_find(r->scope[i - 1], name);
		if (v != NULL)
			return v;
	}
	return NULL;
}

static bool truthy(const struct tmpl_var *v)
{
	switch (v->kind) {
	case TMPL_BOOL:
		return v->b;
	case TMPL_LIST:
		return v->n_items > 0;
	default:
		return v->len > 0;
	}
}

static int render_block(struct render *r, const struct tmpl *t, const struct tmpl_block *b,
			unsigned depth, const char **error_r);

static int render_node(struct render *r, const struct tmpl *t, const struct tmpl_node *node,
		       unsigned depth, const char **error_r)
{
	static const char *const kinds[] = {"a string", "trusted HTML", "a bool", "a list"};
	const struct tmpl_var *v = NULL;
	bool ok = true;
	if (node->type == NODE_TEXT)
		goto write;
	if (node->type == NODE_MSG) {
		ok = out_put(&r->out, r->lang->html[node->index], strlen(r->lang->html[node->index]));
		goto write;
	}
	if (node->type == NODE_PARTIAL) {
		if (depth + 1 > TMPL_DEPTH_MAX)
			goto too_deep;
		const struct tmpl *p = &r->T->t[node->index];
		return render_block(r, p, &p->root, depth + 1, error_r);
	}
	v = lookup(r, node->name);
	if (v == NULL) {
		*error_r = tmpl_error("%s:%u: unknown variable `%s`", t->file, node->line,
				      node->name);
		return -1;
	}
	switch (node->type) {
	case NODE_VAR:
		if (v->kind != TMPL_STR)
			goto wrong_kind;
		ok = out_escaped(&r->out, v->str, v->len);
		break;
	case NODE_RAW:
		if (v->kind != TMPL_HTML)
			goto wrong_kind;
		ok = out_put(&r->out, v->str, v->len);
		break;
	case NODE_IF:
		if (depth + 1 > TMPL_DEPTH_MAX)
			goto too_deep;
		return render_block(r, t, truthy(v) ? &node->body : &node->alt, depth + 1, error_r);
	case NODE_EACH:
		if (v->kind != TMPL_LIST)
			goto wrong_kind;
		if (depth + 1 > TMPL_DEPTH_MAX || r->n_scope >= SCOPES_MAX)
			goto too_deep;
		for (size_t i = 0; i < v->n_items; i++) {
			r->scope[r->n_scope++] = v->items[i];
			int ret = render_block(r, t, &node->body, depth + 1, error_r);
			r->n_scope--;
			if (ret < 0)
				return -1;
		}
		break;
	default:
		abort();
	}
write:
	if (node->type == NODE_TEXT)
		ok = out_put(&r->out, node->text, node->len);
	if (!ok) {
		*error_r = tmpl_error("%s:%u: page larger than %d bytes", t->file, node->line,
				      TMPL_OUTPUT_MAX);
		return -1;
	}
	return 0;
wrong_kind:
	*error_r = tmpl_error("%s:%u: `%s` is %s, not usable as %s", t->file, node->line,
			      node->name, kinds[v->kind],
			      node->type == NODE_VAR	? "{{text}}"
			      : node->type == NODE_RAW ? "{{{html}}}"
						       : "a list");
	return -1;
too_deep:
	*error_r = tmpl_error("%s:%u: nested deeper than %d", t->file, node->line,
			      TMPL_DEPTH_MAX);
	return -1;
}

static int render_block(struct render *r, const struct tmpl *t, const struct tmpl_block *b,
			unsigned depth, const char **error_r)
{
	for (size_t i = 0; i < b->n; i++) {
		if (render_node(r, t, &b->v[i], depth, error_r) < 0)
			return -1;
	}
	return 0;
}

/* Render t with scopes below the engine's own (lang, stylesheet, script[, content]). */
static int render_one(const struct templates *T, const struct tmpl *t,
		      const struct tmpl_lang *lang, const struct tmpl_vars *vars,
		      const struct tmpl_vars *engine, struct out *out, const char **error_r)
{
	struct render r = {.T = T, .lang = lang};
	r.scope[r.n_scope++] = vars;
	r.scope[r.n_scope++] = T->builtins;
	r.scope[r.n_scope++] = engine;
	int ret = render_block(&r, t, &t->root, 0, error_r);
	if (ret == 0 && !out_put(&r.out, "", 0)) {
		*error_r = tmpl_error("%s: page larger than %d bytes", t->file, TMPL_OUTPUT_MAX);
		ret = -1;
	}
	if (ret < 0)
		out_wipe(&r.out);
	else
		*out = r.out;
	return ret;
}

int tmpl_render_page(const struct templates *T, const struct tmpl *page,
		     const struct tmpl *layout, const struct tmpl_lang *lang,
		     const struct tmpl_vars *vars, char **html_r, size_t *len_r,
		     const char **error_r)
{
	struct out content = {0}, whole = {0};
	struct tmpl_vars *engine = tmpl_vars_new();
	int ret = -1;
	tmpl_set(engine, "lang", lang->code);
	if (render_one(T, page, lang, vars, engine, &content, error_r) < 0)
		goto out;
	tmpl_set_html(engine, "content", content.buf);
	if (render_one(T, layout, lang, vars, engine, &whole, error_r) < 0)
		goto out;
	*html_r = whole.buf;
	*len_r = whole.len;
	ret = 0;
out:
	out_wipe(&content);
	tmpl_vars_free(engine);
	return ret;
}
