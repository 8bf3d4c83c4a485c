"""Zone texts shared by the DNS server tests (unit, integration and Knot parity) and by
the hostile-input test and its benchmark (`FUZZ`, formatted with `zone` and `txt`)."""

EXAMPLE = """
$TTL 3600
@        IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@        NS    ns1
@        NS    ns2.other.net.
@        MX    10 mail
@        MX    20 mx.other.net.
ns1      A     192.0.2.1
mail     A     192.0.2.2
mail     AAAA  2001:db8::2
www      CNAME web
web      A     192.0.2.3
web      TXT   "web server"
chain1   CNAME chain2
chain2   CNAME chain3
chain3   A     192.0.2.9
dangling CNAME missing
external CNAME www.other.net.
loop1    CNAME loop2
loop2    CNAME loop1
toref    CNAME host.sub
*.wild   TXT   "wildcard"
*.wild   MX    10 mail
*.cw     CNAME web
a.b.c    A     192.0.2.4
x.*.ent  A     192.0.2.10
_sip._udp SRV  0 5 5060 sipsrv
sipsrv   A     192.0.2.11
sub      NS    ns.sub
sub      NS    ns1
sub      DS    12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub   A     192.0.2.5
ns.sub   AAAA  2001:db8::5
nods     NS    ns.nods
ns.nods  A     192.0.2.6
big      TXT   "0123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "1123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "2123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "3123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "4123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "5123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "6123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT   "7123456789012345678901234567890123456789012345678901234567890123456789"
"""

# bench/fuzz.py and tests/cluster/test_hostile_input.py: a delegation, a wildcard, an empty
# non-terminal and a large TXT RRset (`txt` is each of its six strings)
FUZZ = """$ORIGIN {zone}
$TTL 300
@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 300
@ 3600 IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
www IN AAAA 2001:db8::80
*.apps IN A 192.0.2.100
a.b IN A 192.0.2.7
mail IN MX 10 www
big IN TXT "{txt}" "{txt}" "{txt}" "{txt}" "{txt}" "{txt}"
sub 3600 IN NS ns.sub
ns.sub IN A 192.0.2.53
"""

# DNAME (RFC 6672) cases, origin dname.test.: an in-zone target chased, one out of the
# zone, one through a wildcard and one to a delegation, a CNAME into a DNAME, a DNAME
# loop, and a target so long that names below `long` synthesize past 255 octets.
LONG_TARGET = ".".join(c * 63 for c in "abc") + "."
DNAME_ZONE = f"""
$TTL 3600
@        SOA   ns1 hostmaster 1 7200 3600 1209600 300
@        NS    ns1
ns1      A     192.0.2.1
old      300   DNAME new
new      A     192.0.2.6
a.new    A     192.0.2.5
a.new    MX    10 a.old
ext      DNAME other.net.
cn       CNAME x.old
cn2      CNAME a.old
loop     DNAME x.loop2
loop2    DNAME loop
long     DNAME {LONG_TARGET}
*.wild   A     192.0.2.7
wd       DNAME w.wild
sub      NS    ns.sub
ns.sub   A     192.0.2.8
tosub    DNAME sub
"""
# a DNAME at the apex of apex.test. (beside its SOA and NS): everything below it moves
APEX_DNAME_ZONE = """
$TTL 3600
@        SOA   ns.other.net. hostmaster 1 7200 3600 1209600 300
@        NS    ns.other.net.
@        DNAME dname.test.
"""
