/* The template parser: turns a template's text into a tree of text, variable, #if,
 * #each, message and partial nodes once at load, and links partials across templates
 * (refusing unknown ones, cycles and nesting deeper than TMPL_DEPTH_MAX). Every error
 * names FILE:LINE. */
#include <stdlib.h>
#include <string.h>

#include "template_int.h"
#include "util.h"

enum tag {
	TAG_EOF,
	TAG_TEXT,
	TAG_VAR,
	TAG_RAW,
	TAG_IF,
	TAG_EACH,
	TAG_ELSE,
	TAG_END_IF,
	TAG_END_EACH,
	TAG_MSG,
	TAG_PARTIAL,
	TAG_COMMENT,
};

struct parser {
	const struct templates *T;
	const struct tmpl *t;
	size_t pos;
	unsigned line;
	/* the token just read */
	enum tag tag;
	unsigned tag_line;
	const char *arg;
	size_t arg_len;
};

bool tmpl_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > TMPL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

static unsigned count_lines(const char *s, size_t len)
{
	unsigned n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

/* Does the tag text start with word followed by white space? Sets the rest as argument. */
static bool keyword(struct parser *p, const char *s, size_t len, const char *word)
{
	size_t wl = strlen(word);
	if (len <= wl || memcmp(s, word, wl) != 0 || !is_space(s[wl]))
		return false;
	p->arg = s + wl;
	p->arg_len = len - wl;
	trim(&p->arg, &p->arg_len);
	return true;
}

/* Read the next token. Returns 0, or -1 with *error_r. */
static int next(struct parser *p, const char **error_r)
{
	const char *src = p->t->src;
	size_t len = p->t->src_len;
	if (p->pos >= len) {
		p->tag = TAG_EOF;
		p->tag_line = p->line;
		return 0;
	}
	const char *open = strstr(src + p->pos, "{{");
	if (open != (src + p->pos)) {
		size_t n = open != NULL ? (size_t)(open - (src + p->pos)) : len - p->pos;
		p->tag = TAG_TEXT;
		p->tag_line = p->line;
		p->arg = src + p->pos;
		p->arg_len = n;
		p->line += count_lines(p->arg, n);
		p->pos += n;
		return 0;
	}
	p->tag_line = p->line;
	const char *start = open + 2;
	bool triple = *start == '{';
	bool comment = *start == '!';
	const char *close = strstr(start, triple ? "}}}" : "}}");
	if (close == NULL) {
		*error_r = tmpl_error("%s:%u: unclosed tag", p->t->file, p->tag_line);
		return -1;
	}
	const char *s = start + (triple ? 1 : 0);
	size_t n = (size_t)(close - s);
	p->line += count_lines(open, (size_t)(close - open));
	p->pos = (size_t)(close - src) + (triple ? 3 : 2);
	if (comment) {
		p->tag = TAG_COMMENT;
		return 0;
	}
	if (memchr(s, '\n', n) != NULL)
		goto bad;
	trim(&s, &n);
	p->arg = s;
	p->arg_len = n;
	if (triple) {
		p->tag = TAG_RAW;
	} else if (n == 4 && memcmp(s, "else", 4) == 0) {
		p->tag = TAG_ELSE;
	} else if (n == 3 && memcmp(s, "/if", 3) == 0) {
		p->tag = TAG_END_IF;
	} else if (n == 5 && memcmp(s, "/each", 5) == 0) {
		p->tag = TAG_END_EACH;
	} else if (keyword(p, s, n, "#if")) {
		p->tag = TAG_IF;
	} else if (keyword(p, s, n, "#each")) {
		p->tag = TAG_EACH;
	} else if (keyword(p, s, n, "t")) {
		p->tag = TAG_MSG;
	} else if (n > 0 && s[0] == '>') {
		p->tag = TAG_PARTIAL;
		p->arg = s + 1;
		p->arg_len = n - 1;
		trim(&p->arg, &p->arg_len);
	} else {
		p->tag = TAG_VAR;
	}
	if (p->tag == TAG_ELSE || p->tag == TAG_END_IF || p->tag == TAG_END_EACH)
		return 0;
	if (!tmpl_name_valid(p->arg, p->arg_len))
		goto bad;
	return 0;
bad:
	*error_r = tmpl_error("%s:%u: not a valid tag: {{%.*s}}", p->t->file, p->tag_line,
			      (int)(n > 40 ? 40 : n), s);
	return -1;
}

static void block_push(struct tmpl_block *b, const struct tmpl_node *node)
{
	b->v = xrealloc(b->v, (b->n + 1) * sizeof(*b->v));
	b->v[b->n++] = *node;
}

void tmpl_block_free(struct tmpl_block *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].name);
		tmpl_block_free(&b->v[i].body);
		tmpl_block_free(&b->v[i].alt);
	}
	free(b->v);
	b->v = NULL;
	b->n = 0;
}

static bool find_key(const struct templates *T, const char *key, size_t *index_r)
{
	for (size_t i = 0; i < T->n_keys; i++) {
		if (strcmp(T->keys[i], key) == 0) {
			*index_r = i;
			return true;
		}
	}
	return false;
}

enum end {
	END_EOF,
	END_IF, /* {{else}} or {{/if}} */
	END_ELSE, /* {{/if}} after {{else}} */
	END_EACH,
};

/* Parse nodes into b until the end that `end` expects; *closed_r tells which tag ended it. */
static int parse_block(struct parser *p, struct tmpl_block *b, unsigned depth, enum end end,
		       unsigned open_line, enum tag *closed_r, const char **error_r)
{
	static const char *const opener[] = {"", "{{#if}}", "{{#if}}", "{{#each}}"};
	struct tmpl_node node;
	enum tag closed;
	for (;;) {
		memset(&node, 0, sizeof(node));
		if (next(p, error_r) < 0)
			return -1;
		node.line = p->tag_line;
		switch (p->tag) {
		case TAG_EOF:
			if (end != END_EOF) {
				*error_r = tmpl_error("%s:%u: %s opened here is never closed",
						      p->t->file, open_line, opener[end]);
				return -1;
			}
			*closed_r = TAG_EOF;
			return 0;
		case TAG_COMMENT:
			continue;
		case TAG_TEXT:
			node.type = NODE_TEXT;
			node.text = p->arg;
			node.len = p->arg_len;
			block_push(b, &node);
			continue;
		case TAG_ELSE:
			if (end != END_IF) {
				*error_r = tmpl_error("%s:%u: {{else}} outside {{#if}}", p->t->file,
						      p->tag_line);
				return -1;
			}
			*closed_r = TAG_ELSE;
			return 0;
		case TAG_END_IF:
		case TAG_END_EACH: {
			bool want_if = end == END_IF || end == END_ELSE;
			bool is_if = p->tag == TAG_END_IF;
			if (end == END_EOF || want_if != is_if) {
				*error_r = tmpl_error("%s:%u: {{%s}} does not close anything open here",
						      p->t->file, p->tag_line, is_if ? "/if" : "/each");
				return -1;
			}
			*closed_r = p->tag;
			return 0;
		}
		default:
			break;
		}
		node.name = xstrndup(p->arg, p->arg_len);
		switch (p->tag) {
		case TAG_VAR:
			node.type = NODE_VAR;
			break;
		case TAG_RAW:
			node.type = NODE_RAW;
			break;
		case TAG_PARTIAL:
			node.type = NODE_PARTIAL;
			break;
		case TAG_MSG:
			node.type = NODE_MSG;
			if (!find_key(p->T, node.name, &node.index)) {
				*error_r = tmpl_error("%s:%u: unknown message `%s`", p->t->file,
						      node.line, node.name);
				goto fail;
			}
			break;
		case TAG_IF:
		case TAG_EACH:
			node.type = p->tag == TAG_IF ? NODE_IF : NODE_EACH;
			if (depth + 1 > TMPL_DEPTH_MAX) {
				*error_r = tmpl_error("%s:%u: blocks nested deeper than %d", p->t->file,
						      node.line, TMPL_DEPTH_MAX);
				goto fail;
			}
			if (parse_block(p, &node.body, depth + 1,
					node.type == NODE_IF ? END_IF : END_EACH, node.line, &closed,
					error_r) < 0)
				goto fail;
			if (closed == TAG_ELSE &&
			    parse_block(p, &node.alt, depth + 1, END_ELSE, node.line, &closed,
					error_r) < 0)
				goto fail;
			break;
		default:
			abort(); /* every other tag returned above */
		}
		block_push(b, &node);
	}
fail:
	free(node.name);
	tmpl_block_free(&node.body);
	tmpl_block_free(&node.alt);
	return -1;
}

int tmpl_parse(const struct templates *T, struct tmpl *t, const char **error_r)
{
	struct parser p = {.T = T, .t = t, .line = 1};
	enum tag closed;
	if (parse_block(&p, &t->root, 0, END_EOF, 1, &closed, error_r) < 0) {
		tmpl_block_free(&t->root);
		return -1;
	}
	return 0;
}

static bool find_template(const struct templates *T, const char *name, size_t *index_r)
{
	for (size_t i = 0; i < T->n; i++) {
		if (strcmp(T->t[i].name, name) == 0) {
			*index_r = i;
			return true;
		}
	}
	return false;
}

static int resolve(struct templates *T, struct tmpl *t, struct tmpl_block *b,
		   const char **error_r)
{
	for (size_t i = 0; i < b->n; i++) {
		struct tmpl_node *node = &b->v[i];
		if (node->type == NODE_PARTIAL && !find_template(T, node->name, &node->index)) {
			*error_r = tmpl_error("%s:%u: unknown partial `%s`", t->file, node->line,
					      node->name);
			return -1;
		}
		if (resolve(T, t, &node->body, error_r) < 0 || resolve(T, t, &node->alt, error_r) < 0)
			return -1;
	}
	return 0;
}

enum mark {
	MARK_NONE,
	MARK_OPEN,
	MARK_DONE,
};

static int measure(struct templates *T, size_t index, enum mark *marks, const char **error_r);

/* The deepest nesting under b, counting partials' own depth. */
static int block_depth(struct templates *T, const struct tmpl *t, const struct tmpl_block *b,
		       unsigned depth, enum mark *marks, unsigned *max_r, const char **error_r)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct tmpl_node *node = &b->v[i];
		unsigned d = depth;
		if (node->type == NODE_PARTIAL) {
			if (marks[node->index] == MARK_OPEN) {
				*error_r = tmpl_error("%s:%u: partial `%s` includes itself", t->file,
						      node->line, node->name);
				return -1;
			}
			if (measure(T, node->index, marks, error_r) < 0)
				return -1;
			d = depth + 1 + T->t[node->index].depth;
			if (d > TMPL_DEPTH_MAX) {
				*error_r = tmpl_error("%s:%u: partial `%s` nests deeper than %d",
						      t->file, node->line, node->name,
						      TMPL_DEPTH_MAX);
				return -1;
			}
		} else if (node->type == NODE_IF || node->type == NODE_EACH) {
			d = depth + 1;
			if (block_depth(T, t, &node->body, d, marks, &d, error_r) < 0 ||
			    block_depth(T, t, &node->alt, depth + 1, marks, &d, error_r) < 0)
				return -1;
		}
		if (d > *max_r)
			*max_r = d;
	}
	return 0;
}

static int measure(struct templates *T, size_t index, enum mark *marks, const char **error_r)
{
	if (marks[index] == MARK_DONE)
		return 0;
	marks[index] = MARK_OPEN;
	struct tmpl *t = &T->t[index];
	unsigned max = 0;
	if (block_depth(T, t, &t->root, 0, marks, &max, error_r) < 0)
		return -1;
	t->depth = max;
	marks[index] = MARK_DONE;
	return 0;
}

int tmpl_link(struct templates *T, const char **error_r)
{
	for (size_t i = 0; i < T->n; i++) {
		if (resolve(T, &T->t[i], &T->t[i].root, error_r) < 0)
			return -1;
	}
	enum mark *marks = xcalloc(T->n == 0 ? 1 : T->n, sizeof(*marks));
	int ret = 0;
	for (size_t i = 0; i < T->n && ret == 0; i++)
		ret = measure(T, i, marks, error_r);
	free(marks);
	return ret;
}
