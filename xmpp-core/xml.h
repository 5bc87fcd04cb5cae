/* A small element tree for stanzas, and its serialisation.
 *
 * Element names and attribute names are split into namespace and local name (the parser
 * resolves prefixes). Text children are nodes with name == NULL. Every node has one owner:
 * its parent, or whoever holds the root; xnode_free() frees a subtree and accepts NULL. */
#ifndef XMPP_XML_H
#define XMPP_XML_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

#define NS_CLIENT "jabber:client"
#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_XML "http://www.w3.org/XML/1998/namespace"

struct xattr {
	char *ns; /* NULL: no namespace */
	char *name;
	char *value;
};

struct xnode {
	char *ns;   /* elements: their namespace ("" for none); in the node's allocation */
	char *name; /* NULL for a text node; in the node's allocation */
	char *text; /* text nodes only */
	size_t text_len;
	struct xattr *attrs;
	size_t n_attrs;
	struct xnode **children;
	size_t n_children;
};

struct xnode *xnode_new(const char *ns, const char *name);
/* A new element child of parent (appended); returns it. */
struct xnode *xnode_add(struct xnode *parent, const char *ns, const char *name);
/* Append a child the caller owned until now. */
void xnode_append(struct xnode *parent, struct xnode *child);
void xnode_add_text(struct xnode *parent, const char *text, size_t len);
void xnode_free(struct xnode *node);

/* Attributes without a namespace. Setting an existing one replaces its value; value NULL
 * removes it. */
void xnode_set_attr(struct xnode *node, const char *name, const char *value);
const char *xnode_attr(const struct xnode *node, const char *name);
/* An attribute in a namespace (ns != NULL), e.g. xml:lang. */
void xnode_add_attr_ns(struct xnode *node, const char *ns, const char *name, const char *value);

/* First element child in ns with name (NULL matches any), or NULL. */
struct xnode *xnode_child(const struct xnode *node, const char *ns, const char *name);
/* Number of element children. */
size_t xnode_element_count(const struct xnode *node);
/* Concatenated text of node's direct text children (new string). */
char *xnode_text(const struct xnode *node);
/* Overwrite the text of every text node under node with zeros (secrets, before freeing). */
void xnode_wipe_text(struct xnode *node);
/* A deep copy. */
struct xnode *xnode_copy(const struct xnode *node);

/* Write node as XML. outer_ns is the default namespace in force where it is written
 * (NS_CLIENT for stanzas on a client stream); xmlns is written where it changes. */
void xml_write(struct evbuffer *out, const struct xnode *node, const char *outer_ns);
/* The same into a new NUL-terminated string. */
char *xml_to_string(const struct xnode *node, const char *outer_ns);
/* Escaped character data or attribute value (quotes escaped too). */
void xml_escape(struct evbuffer *out, const char *text, size_t len);

#endif
