/* libxml2 helpers for the SAML documents samlgw reads itself (responses and federation
 * metadata): parsing with no network, no DTD loading and no entity expansion, namespace-
 * aware child lookup, ID registration for signature references, and xs:dateTime. */
#ifndef SAMLGW_XML_H
#define SAMLGW_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <libxml/tree.h>

#define NS_SAMLP "urn:oasis:names:tc:SAML:2.0:protocol"
#define NS_SAML "urn:oasis:names:tc:SAML:2.0:assertion"
#define NS_MD "urn:oasis:names:tc:SAML:2.0:metadata"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define NS_SHIBMD "urn:mace:shibboleth:metadata:1.0"
#define NS_MDUI "urn:oasis:names:tc:SAML:metadata:ui"
#define NS_MDATTR "urn:oasis:names:tc:SAML:metadata:attribute"
#define NS_REMD "http://refeds.org/metadata"
#define NS_XSI "http://www.w3.org/2001/XMLSchema-instance"

/* The error of xml_parse_safe for a document with a DTD. */
#define XML_DTD_ERROR "the document carries a DTD"

/* Parse data[0..len) without network access, DTD loading or entity substitution; a
 * document that carries a DTD (<!DOCTYPE …>) is refused as soon as the parser meets it
 * (*error_r is then XML_DTD_ERROR), before any of its declarations is read. Returns the
 * document, or NULL with *error_r (valid until the next call in the thread). */
xmlDoc *xml_parse_safe(const char *data, size_t len, const char **error_r);

/* True when node is an element named name in namespace ns. */
bool xml_is(const xmlNode *node, const char *ns, const char *name);
/* The first element child of parent named ns:name, or NULL. */
xmlNode *xml_child(const xmlNode *parent, const char *ns, const char *name);
/* The next element sibling after node named ns:name, or NULL. */
xmlNode *xml_next(const xmlNode *node, const char *ns, const char *name);
/* How many element children of parent are named ns:name. */
size_t xml_count_children(const xmlNode *parent, const char *ns, const char *name);
/* How many elements named ns:name are in the subtree under (and including) node. */
size_t xml_count_descendants(const xmlNode *node, const char *ns, const char *name);

/* An attribute without namespace (NULL when absent). The result points into the tree:
 * valid while the node lives. Attribute values with more than one text child are
 * treated as absent. */
const char *xml_attr(const xmlNode *node, const char *name);
const char *xml_attr_ns(const xmlNode *node, const char *ns, const char *name);

/* The text content of an element (its text children only). Returns a new string (free
 * with free()), or NULL when the element holds anything but text or is longer than max. */
char *xml_text(const xmlNode *node, size_t max);

/* The text of parent's saml:Issuer (trimmed, at most 1024 bytes), or NULL when there is
 * none or its Format is neither absent nor the entity format. */
char *xml_saml_issuer(const xmlNode *parent);

/* Register every un-namespaced attribute "ID" under node (node and its following
 * siblings) as an XML ID, so that a same-document reference "#X" finds exactly one
 * element. Also caps what canonicalisation costs grow with: no element under node lies
 * deeper than XML_DEPTH_MAX elements in the document, or has more than XML_NS_IN_SCOPE_MAX
 * namespace declarations on itself and its ancestors. Returns -1 with *error_r when an ID
 * value is used twice or a cap is passed. Call it before any signature check. */
#define XML_DEPTH_MAX 48
#define XML_NS_IN_SCOPE_MAX 128
int xml_register_ids(xmlDoc *doc, xmlNode *node, const char **error_r);

/* Parse an xs:dateTime in UTC ("2024-05-01T10:00:00Z", fractions allowed, the Z or
 * +00:00 required). Returns false on anything else. */
bool xml_parse_time(const char *text, time_t *t_r);
/* Format t as xs:dateTime in UTC into buf (at least 21 bytes). */
void xml_format_time(time_t t, char *buf, size_t size);

/* Append text to *buf (a malloc'ed string, *len its length), XML-escaped for element
 * content and double-quoted attribute values. */
void xml_escape_append(char **buf, size_t *len, const char *text);

#endif
