"""SP metadata for federations (issue "federation-ready", point 6): entity categories and
assurance certifications from [metadata] as mdattr:EntityAttributes, checked at load; and
`samlgw --print-metadata`, which prints what GET /saml/metadata serves, byte for byte,
without a server or Redis."""
import subprocess

import pytest
from lxml import etree

import samltest
from conftest import (started, REPO, SAMLGW_BIN, SP_ENTITY, Gateway,
                      factory_idp_metadata)

TEMPLATE = REPO / "tests" / "fuzz" / "acs" / "idp-metadata.xml"
NS = {"md": "urn:oasis:names:tc:SAML:2.0:metadata",
      "mdattr": "urn:oasis:names:tc:SAML:metadata:attribute",
      "saml": "urn:oasis:names:tc:SAML:2.0:assertion"}
URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
EC = "http://macedir.org/entity-category"
AC = "urn:oasis:names:tc:SAML:attribute:assurance-certification"
RS = "http://refeds.org/category/research-and-scholarship"
COCO = "https://refeds.org/category/code-of-conduct/v2"
SIRTFI = "https://refeds.org/sirtfi"
CATEGORIES = ("entity_categories = %s\nentity_categories = %s\n"
              "assurance_certifications = %s\n" % (RS, COCO, SIRTFI))


def with_metadata(text, lines):
    """The configuration text with lines added to its [metadata] section."""
    return text.replace("[metadata]\n", "[metadata]\n" + lines, 1)


@pytest.fixture(scope="module")
def mdgw(tmp_path_factory, redis):
    template = etree.fromstring(TEMPLATE.read_bytes())
    for attempt in range(3):
        base = tmp_path_factory.mktemp("spmd")
        entity = "https://uni.idp.example.net/idp"
        gw = Gateway(base / "gw", redis, entity)
        _key, cert = samltest.make_keypair(base / "keys", "idp")
        md = base / "idp.xml"
        md.write_bytes(etree.tostring(factory_idp_metadata(template, entity, cert,
                                                           ["example.org"])))
        gw.write_config(md)
        gw.config.write_text(with_metadata(gw.config.read_text(), CATEGORIES))
        if started(gw, attempt):
            break
    try:
        yield gw
    finally:
        gw.stop()


def served(gw):
    page = samltest.Browser().get(gw.url + "/saml/metadata", follow=False)
    assert page.status == 200
    assert page.headers["Content-Type"] == "application/samlmetadata+xml"
    return page.body


def printed(config, *extra):
    return subprocess.run([SAMLGW_BIN, "--config", str(config), "--print-metadata"] +
                          list(extra), capture_output=True, timeout=60)


def entity_attributes(body):
    """{Name: [values]} of the EntityDescriptor's mdattr:EntityAttributes."""
    root = etree.fromstring(body)
    out = {}
    for a in root.findall("md:Extensions/mdattr:EntityAttributes/saml:Attribute", NS):
        assert a.get("NameFormat") == URI, etree.tostring(a)
        out[a.get("Name")] = [v.text for v in a.findall("saml:AttributeValue", NS)]
    return out


def test_entity_categories_in_metadata(mdgw):
    body = served(mdgw)
    root = etree.fromstring(body)
    assert root.get("entityID") == SP_ENTITY
    # The EntityDescriptor's own Extensions come before its role.
    children = [c.tag for c in root if isinstance(c.tag, str)]
    assert children[0] == "{%s}Extensions" % NS["md"]
    assert children[1] == "{%s}SPSSODescriptor" % NS["md"]
    assert entity_attributes(body) == {EC: [RS, COCO], AC: [SIRTFI]}
    # Nothing of it inside the SP role.
    assert root.find("md:SPSSODescriptor//mdattr:EntityAttributes", NS) is None


def test_print_metadata_equals_served(mdgw):
    body = served(mdgw)
    r = printed(mdgw.config)
    assert r.returncode == 0, r.stderr
    assert r.stdout == body
    assert r.stderr == b""


def test_print_metadata_needs_no_redis(mdgw, tmp_path):
    """No server and no Redis: the store's URL points nowhere."""
    config = tmp_path / "samlgw.conf"
    text = mdgw.config.read_text()
    text = text.replace("url = %s" % mdgw.redis.url,
                        "url = unix://%s" % (tmp_path / "nothing.sock"), 1)
    assert "nothing.sock" in text
    config.write_text(text)
    r = printed(config)
    assert r.returncode == 0, r.stderr
    assert r.stdout == served(mdgw)


def test_without_categories_no_entity_attributes(mdgw, tmp_path):
    config = tmp_path / "samlgw.conf"
    text = mdgw.config.read_text()
    config.write_text(text.replace(CATEGORIES, ""))
    r = printed(config)
    assert r.returncode == 0, r.stderr
    root = etree.fromstring(r.stdout)
    assert root.find("md:Extensions", NS) is None
    assert entity_attributes(r.stdout) == {}
    # Only categories: no assurance-certification attribute.
    config.write_text(text.replace(CATEGORIES, "entity_categories = %s\n" % RS))
    r = printed(config)
    assert r.returncode == 0, r.stderr
    assert entity_attributes(r.stdout) == {EC: [RS]}


BAD = [
    ("not_a_uri", "entity_categories = research-and-scholarship\n",
     "[metadata] entity_categories: must be an absolute URI"),
    ("space_in_uri", "assurance_certifications = https://refeds.org/sir tfi\n", None),
    ("quote", 'entity_categories = http://refeds.org/"x\n',
     "[metadata] entity_categories: must be printable ASCII without spaces"),
]


@pytest.mark.parametrize("case,line,message", BAD, ids=[b[0] for b in BAD])
def test_config_errors(mdgw, tmp_path, case, line, message):
    config = tmp_path / "samlgw.conf"
    text = with_metadata(mdgw.config.read_text().replace(CATEGORIES, ""), line)
    config.write_text(text)
    n = text.splitlines().index(line.rstrip("\n")) + 1
    r = printed(config)
    assert r.returncode == 78, r.stderr
    assert r.stdout == b""
    err = r.stderr.decode()
    assert "%s:%d: " % (config, n) in err, err
    if message:
        assert message in err, err
    r = subprocess.run([SAMLGW_BIN, "--config", str(config), "--check"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "%s:%d: " % (config, n) in r.stderr, r.stderr


def test_sirtfi_needs_security_contact(mdgw, tmp_path):
    config = tmp_path / "samlgw.conf"
    text = mdgw.config.read_text()
    contact = [l for l in text.splitlines() if l.startswith("contact_security")][0]
    config.write_text(text.replace(contact + "\n", ""))
    r = printed(config)
    assert r.returncode == 78
    n = text.replace(contact + "\n", "").splitlines().index(
        "assurance_certifications = " + SIRTFI) + 1
    assert "%s:%d: [metadata] assurance_certifications claims Sirtfi" % (config, n) in \
        r.stderr.decode(), r.stderr


def test_print_metadata_usage(mdgw):
    r = subprocess.run([SAMLGW_BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--print-metadata" in r.stdout
    r = printed(mdgw.config, "--check")
    assert r.returncode == 64 and r.stdout == b""
    r = printed("/nonexistent/samlgw.conf")
    assert r.returncode == 78 and r.stdout == b""
