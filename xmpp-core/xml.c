/* The stanza element tree and its serialiser (see xml.h). */
#include "xml.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

/* A NUL-terminated copy of len bytes that need not be terminated themselves. */
static char *memdup0(const char *s, size_t len)
{
	char *d = xcalloc(1, len + 1);
	memcpy(d, s, len);
	return d;
}

/* An element's namespace and name live in the same allocation as the element. */
struct xnode *xnode_new(const char *ns, const char *name)
{
	if (ns == NULL)
		ns = "";
	size_t ns_len = strlen(ns), name_len = strlen(name);
	struct xnode *n = xcalloc(1, sizeof(*n) + ns_len + 1 + name_len + 1);
	n->ns = (char *)(n + 1);
	memcpy(n->ns, ns, ns_len + 1);
	n->name = n->ns + ns_len + 1;
	memcpy(n->name, name, name_len + 1);
	return n;
}

void xnode_append(struct xnode *parent, struct xnode *child)
{
	parent->children = xrealloc(parent->children,
				    (parent->n_children + 1) * sizeof(*parent->children));
	parent->children[parent->n_children++] = child;
}

struct xnode *xnode_add(struct xnode *parent, const char *ns, const char *name)
{
	struct xnode *c = xnode_new(ns, name);
	xnode_append(parent, c);
	return c;
}

void xnode_add_text(struct xnode *parent, const char *text, size_t len)
{
	if (len == 0)
		return;
	/* Merge with a preceding text node (expat delivers text in pieces). */
	if (parent->n_children > 0 && parent->children[parent->n_children - 1]->name == NULL) {
		struct xnode *t = parent->children[parent->n_children - 1];
		/* Not realloc: the old copy is wiped, as the text may be a secret. */
		char *grown = xcalloc(1, t->text_len + len + 1);
		memcpy(grown, t->text, t->text_len);
		secret_wipe(t->text, t->text_len);
		free(t->text);
		t->text = grown;
		memcpy(t->text + t->text_len, text, len);
		t->text_len += len;
		t->text[t->text_len] = '\0';
		return;
	}
	struct xnode *t = xcalloc(1, sizeof(*t));
	t->text = memdup0(text, len);
	t->text_len = len;
	xnode_append(parent, t);
}

void xnode_free(struct xnode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n_children; i++)
		xnode_free(n->children[i]);
	free(n->children);
	for (size_t i = 0; i < n->n_attrs; i++) {
		free(n->attrs[i].ns);
		free(n->attrs[i].name);
		free(n->attrs[i].value);
	}
	free(n->attrs);
	free(n->text);
	free(n);
}

static struct xattr *find_attr(const struct xnode *n, const char *ns, const char *name)
{
	for (size_t i = 0; i < n->n_attrs; i++) {
		struct xattr *a = &n->attrs[i];
		bool same_ns = ns == NULL ? a->ns == NULL : a->ns != NULL && strcmp(a->ns, ns) == 0;
		if (same_ns && strcmp(a->name, name) == 0)
			return a;
	}
	return NULL;
}

void xnode_set_attr(struct xnode *n, const char *name, const char *value)
{
	struct xattr *a = find_attr(n, NULL, name);
	if (a != NULL) {
		if (value != NULL) {
			free(a->value);
			a->value = xstrdup(value);
			return;
		}
		free(a->name);
		free(a->value);
		size_t i = (size_t)(a - n->attrs);
		memmove(a, a + 1, (n->n_attrs - i - 1) * sizeof(*a));
		n->n_attrs--;
		return;
	}
	if (value == NULL)
		return;
	n->attrs = xrealloc(n->attrs, (n->n_attrs + 1) * sizeof(*n->attrs));
	n->attrs[n->n_attrs++] = (struct xattr){NULL, xstrdup(name), xstrdup(value)};
}

void xnode_add_attr_ns(struct xnode *n, const char *ns, const char *name, const char *value)
{
	n->attrs = xrealloc(n->attrs, (n->n_attrs + 1) * sizeof(*n->attrs));
	n->attrs[n->n_attrs++] = (struct xattr){ns != NULL ? xstrdup(ns) : NULL, xstrdup(name),
						xstrdup(value)};
}

const char *xnode_attr(const struct xnode *n, const char *name)
{
	struct xattr *a = find_attr(n, NULL, name);
	return a != NULL ? a->value : NULL;
}

struct xnode *xnode_child(const struct xnode *n, const char *ns, const char *name)
{
	for (size_t i = 0; i < n->n_children; i++) {
		struct xnode *c = n->children[i];
		if (c->name == NULL)
			continue;
		if ((ns == NULL || strcmp(c->ns, ns) == 0) &&
		    (name == NULL || strcmp(c->name, name) == 0))
			return c;
	}
	return NULL;
}

size_t xnode_element_count(const struct xnode *n)
{
	size_t k = 0;
	for (size_t i = 0; i < n->n_children; i++)
		k += n->children[i]->name != NULL;
	return k;
}

char *xnode_text(const struct xnode *n)
{
	size_t len = 0;
	for (size_t i = 0; i < n->n_children; i++)
		if (n->children[i]->name == NULL)
			len += n->children[i]->text_len;
	char *s = xcalloc(1, len + 1);
	size_t off = 0;
	for (size_t i = 0; i < n->n_children; i++) {
		if (n->children[i]->name == NULL) {
			memcpy(s + off, n->children[i]->text, n->children[i]->text_len);
			off += n->children[i]->text_len;
		}
	}
	return s;
}

void xnode_wipe_text(struct xnode *n)
{
	if (n->name == NULL) {
		secret_wipe(n->text, n->text_len);
		return;
	}
	for (size_t i = 0; i < n->n_children; i++)
		xnode_wipe_text(n->children[i]);
}

struct xnode *xnode_copy(const struct xnode *n)
{
	if (n->name == NULL) {
		struct xnode *c = xcalloc(1, sizeof(*c));
		c->text = memdup0(n->text, n->text_len);
		c->text_len = n->text_len;
		return c;
	}
	struct xnode *c = xnode_new(n->ns, n->name);
	for (size_t i = 0; i < n->n_attrs; i++)
		xnode_add_attr_ns(c, n->attrs[i].ns, n->attrs[i].name, n->attrs[i].value);
	for (size_t i = 0; i < n->n_children; i++)
		xnode_append(c, xnode_copy(n->children[i]));
	return c;
}

void xml_escape(struct evbuffer *out, const char *s, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		const char *rep;
		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		case '\r': rep = "&#13;"; break;
		case '\t': rep = "&#9;"; break;
		case '\n': rep = "&#10;"; break;
		default: continue;
		}
		/* Newlines and tabs survive as themselves in text; only attributes need them
		 * as references, and escaping them everywhere is harmless. */
		evbuffer_add(out, s + start, i - start);
		evbuffer_add(out, rep, strlen(rep));
		start = i + 1;
	}
	evbuffer_add(out, s + start, len - start);
}

static void write_attr(struct evbuffer *out, const char *qname, const char *value)
{
	evbuffer_add_printf(out, " %s='", qname);
	xml_escape(out, value, strlen(value));
	evbuffer_add(out, "'", 1);
}

void xml_write(struct evbuffer *out, const struct xnode *n, const char *outer_ns)
{
	if (n->name == NULL) {
		xml_escape(out, n->text, n->text_len);
		return;
	}
	evbuffer_add_printf(out, "<%s", n->name);
	if (outer_ns == NULL || strcmp(outer_ns, n->ns) != 0)
		write_attr(out, "xmlns", n->ns);
	unsigned k = 0;
	for (size_t i = 0; i < n->n_attrs; i++) {
		const struct xattr *a = &n->attrs[i];
		if (a->ns == NULL) {
			write_attr(out, a->name, a->value);
		} else if (strcmp(a->ns, NS_XML) == 0) {
			char q[300];
			snprintf(q, sizeof(q), "xml:%.256s", a->name);
			write_attr(out, q, a->value);
		} else {
			char decl[32], q[300];
			snprintf(decl, sizeof(decl), "xmlns:a%u", k);
			write_attr(out, decl, a->ns);
			snprintf(q, sizeof(q), "a%u:%.256s", k, a->name);
			write_attr(out, q, a->value);
			k++;
		}
	}
	if (n->n_children == 0) {
		evbuffer_add(out, "/>", 2);
		return;
	}
	evbuffer_add(out, ">", 1);
	for (size_t i = 0; i < n->n_children; i++)
		xml_write(out, n->children[i], n->ns);
	evbuffer_add_printf(out, "</%s>", n->name);
}

char *xml_to_string(const struct xnode *n, const char *outer_ns)
{
	struct evbuffer *b = evbuffer_new();
	if (b == NULL)
		abort();
	xml_write(b, n, outer_ns);
	size_t len = evbuffer_get_length(b);
	char *s = xcalloc(1, len + 1);
	evbuffer_remove(b, s, len);
	evbuffer_free(b);
	return s;
}
