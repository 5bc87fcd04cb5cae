"""Synthetic federation aggregates for tests/saml/test_aggregate.py and bench/metadata: N
IdP EntityDescriptors written from a string template (a few kB each, shaped like a
DFN-AAI/eduGAIN entry: entity categories, shibmd:Scope, mdui names in two languages, a
logo, two SSO bindings, an Organization and contacts), signed once by a federation key.

Every synthetic IdP has the same signing certificate unless `members` supplies its own
entries (entity_id, cert_path, scope) for IdPs that really sign Responses
(samltest.ResponseFactory)."""
import html
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "idp"))
import samltest  # noqa: E402

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
        'xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" '
        'xmlns:mdattr="urn:oasis:names:tc:SAML:metadata:attribute" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        'xmlns:shibmd="urn:mace:shibboleth:metadata:1.0" '
        'ID="{id}" Name="urn:example:federation" validUntil="{valid_until}">\n')

ENTITY = """<md:EntityDescriptor entityID="{entity}">
 <md:Extensions><mdattr:EntityAttributes>
  <saml:Attribute Name="http://macedir.org/entity-category" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">{categories}</saml:Attribute>
 </mdattr:EntityAttributes></md:Extensions>
 <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
  <md:Extensions>
   <shibmd:Scope regexp="false">{scope}</shibmd:Scope>
   <mdui:UIInfo>
    <mdui:DisplayName xml:lang="en">{name_en}</mdui:DisplayName>
    <mdui:DisplayName xml:lang="de">{name_de}</mdui:DisplayName>
    <mdui:Description xml:lang="en">Single sign-on for members of {name_en}</mdui:Description>
    <mdui:Logo height="60" width="80">https://{host}/logo.png</mdui:Logo>
    <mdui:Logo height="16" width="16" xml:lang="en">http://{host}/insecure-logo.png</mdui:Logo>
   </mdui:UIInfo>
  </md:Extensions>
  <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
  <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>
  <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://{host}/idp/profile/SAML2/Redirect/SSO"/>
  <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://{host}/idp/profile/SAML2/POST/SSO"/>
 </md:IDPSSODescriptor>
 <md:Organization>
  <md:OrganizationName xml:lang="en">{name_en}</md:OrganizationName>
  <md:OrganizationDisplayName xml:lang="en">{name_en}</md:OrganizationDisplayName>
  <md:OrganizationURL xml:lang="en">https://{host}/</md:OrganizationURL>
 </md:Organization>
 <md:ContactPerson contactType="technical"><md:EmailAddress>mailto:it@{host}</md:EmailAddress></md:ContactPerson>
 <md:ContactPerson contactType="support"><md:EmailAddress>mailto:helpdesk@{host}</md:EmailAddress></md:ContactPerson>
</md:EntityDescriptor>
"""

CAT_RS = "<saml:AttributeValue>http://refeds.org/category/research-and-scholarship</saml:AttributeValue>"
CAT_HIDE = "<saml:AttributeValue>http://refeds.org/category/hide-from-discovery</saml:AttributeValue>"


def synthetic_entity(i):
    return "https://idp%05d.uni.example.net/idp" % i


def entity_xml(entity, cert_b64, scope, name_en, name_de, hidden=False):
    host = entity.split("/")[2]
    return ENTITY.format(entity=html.escape(entity), cert=cert_b64, scope=html.escape(scope),
                         name_en=html.escape(name_en), name_de=html.escape(name_de),
                         host=html.escape(host),
                         categories=CAT_RS + (CAT_HIDE if hidden else ""))


def build(n, cert_path, members=(), valid_until=None):
    """Unsigned aggregate text of n IdPs in total: `members` first (entity_id, cert_path,
    scope), then synthetic ones; every 50th synthetic IdP is hidden from discovery."""
    cert_b64 = samltest.cert_base64(cert_path)
    if valid_until is None:
        valid_until = 14 * 86400  # seconds from now (samltest.saml_time)
    parts = [HEAD.format(id=samltest.new_id(), valid_until=samltest.saml_time(valid_until))]
    for entity, cert, scope in members:
        parts.append(entity_xml(entity, samltest.cert_base64(cert), scope,
                                "Member IdP %s" % scope, "Mitglieds-IdP %s" % scope))
    for i in range(n - len(members)):
        e = synthetic_entity(i)
        parts.append(entity_xml(e, cert_b64, e.split("/")[2], "University %d" % i,
                                "Universität %d" % i, hidden=i % 50 == 49))
    parts.append("</md:EntitiesDescriptor>\n")
    return "".join(parts)


def signed(n, fed_key, fed_cert, idp_cert, members=(), valid_until=None):
    """The aggregate of build(), signed by the federation key (bytes)."""
    return samltest.sign_metadata(build(n, idp_cert, members, valid_until).encode(),
                                  fed_key, fed_cert)


def tamper(data):
    """data with one byte changed inside the signed content (a display name)."""
    i = data.index(b"University 1<")
    return data[:i + 11] + b"7" + data[i + 12:]
