/* This SP's own metadata (GET /saml/metadata), generated from the configuration: the
 * ACS (HTTP-POST), SLO, signing and encryption KeyDescriptors, NameIDFormats, mdui:UIInfo,
 * RequestedAttributes, ContactPersons (with the REFEDS security contact) and the entity
 * categories and assurance certifications (mdattr:EntityAttributes). samlgw
 * --print-metadata prints the same document. */
#ifndef SAMLGW_SP_METADATA_H
#define SAMLGW_SP_METADATA_H

#include "config.h"

/* The URLs derived from http.public_url. */
#define SP_PATH_ACS "/saml/acs"
#define SP_PATH_SLO "/saml/slo"
#define SP_PATH_METADATA "/saml/metadata"

/* Build the metadata with cert_pem (the SP certificate file's text). Returns 0 with
 * *xml_r (caller frees), or -1 with *error_r (static). */
int sp_metadata_build(const struct config *cfg, const char *cert_pem, char **xml_r,
		      const char **error_r);


#endif
