#!/bin/sh
# Make a cluster CA and node certificates for runvault's TLS (openssl).
#
#   deploy/make-certs.sh [--nodes N] [--ip IP[,IP...]] [--test] DIR
#
# Writes into DIR (created, mode 0700):
#   ca.crt ca.key              the cluster CA (keep ca.key offline)
#   nI.crt nI.key              node I = 1..N (default 3): serve with
#                              --tls-cert DIR/nI.crt --tls-key DIR/nI.key
#                              --tls-ca DIR/ca.crt
#   client.crt client.key      a client certificate of the cluster CA (a
#                              client presenting it counts as a peer node)
# and with --test, for the failure tests:
#   expired.crt expired.key    signed by the CA, valid only in 2020
#   other-ca.crt other-ca.key  another CA
#   other.crt other.key        a node certificate of that other CA
#
# Every certificate names each --ip (default 127.0.0.1) both as an IP
# subjectAltName and as a DNS one: runvault's TLS (mbedTLS 2.28) checks a
# server's name only against DNS entries, Python's ssl against IP ones.
# Keys are EC P-256; certificates last 825 days. Node certificates are for
# both serverAuth and clientAuth (raft peers authenticate each other).
set -eu

nodes=3
ips=127.0.0.1
is_test=0
while [ $# -gt 1 ]; do
    case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --ip) ips=$2; shift 2 ;;
    --test) is_test=1; shift ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
dir=$1
case "$nodes" in
'' | *[!0-9]*) echo "make-certs.sh: --nodes needs a number" >&2; exit 2 ;;
esac
command -v openssl >/dev/null || { echo "make-certs.sh: needs openssl" >&2; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"
umask 077

san="DNS:localhost"
old_ifs=$IFS
IFS=,
for ip in $ips; do
    san="$san,IP:$ip,DNS:$ip"
done
IFS=$old_ifs

# key NAME: a new EC key DIR/NAME.key
key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$dir/$1.key" 2>/dev/null
}

# ca NAME CN: a self-signed CA DIR/NAME.crt
ca() {
    key "$1"
    openssl req -x509 -new -key "$dir/$1.key" -sha256 -days 3650 \
        -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/$1.crt" 2>/dev/null
}

# ext FILE: the extensions of a node or client certificate
ext() {
    printf '%s\n' "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyAgreement" \
        "extendedKeyUsage=serverAuth,clientAuth" \
        "subjectAltName=$san" >"$1"
}

# leaf NAME CN CA: DIR/NAME.crt signed by DIR/CA.crt
leaf() {
    key "$1"
    openssl req -new -key "$dir/$1.key" -subj "/CN=$2" \
        -out "$dir/$1.csr" 2>/dev/null
    ext "$dir/$1.ext"
    openssl x509 -req -in "$dir/$1.csr" -CA "$dir/$3.crt" \
        -CAkey "$dir/$3.key" -CAcreateserial -sha256 -days 825 \
        -extfile "$dir/$1.ext" -out "$dir/$1.crt" 2>/dev/null
    rm -f "$dir/$1.csr" "$dir/$1.ext"
}

# expired NAME CA: DIR/NAME.crt signed by CA, valid in 2020 only (openssl
# ca takes explicit dates; openssl x509 -req cannot go back in time)
expired() {
    key "$1"
    openssl req -new -key "$dir/$1.key" -subj "/CN=$1" \
        -out "$dir/$1.csr" 2>/dev/null
    ext "$dir/$1.ext"
    db=$dir/.ca-db
    mkdir -p "$db"
    : >"$db/index.txt"
    printf '%s\n' "[ca]" "default_ca=d" "[d]" "database=$db/index.txt" \
        "new_certs_dir=$db" "serial=$db/serial" "default_md=sha256" \
        "policy=p" "[p]" "commonName=supplied" >"$db/ca.cnf"
    echo 1000 >"$db/serial"
    openssl ca -batch -config "$db/ca.cnf" -cert "$dir/$2.crt" \
        -keyfile "$dir/$2.key" -in "$dir/$1.csr" -out "$dir/$1.crt" \
        -startdate 20200101000000Z -enddate 20200102000000Z \
        -extfile "$dir/$1.ext" -notext 2>/dev/null
    rm -rf "$db" "$dir/$1.csr" "$dir/$1.ext"
}

ca ca "runvault cluster CA"
i=1
while [ "$i" -le "$nodes" ]; do
    leaf "n$i" "runvault node $i" ca
    i=$((i + 1))
done
leaf client "runvault client" ca
if [ "$is_test" = 1 ]; then
    expired expired ca
    ca other-ca "another CA"
    leaf other "runvault node (other CA)" other-ca
fi
rm -f "$dir"/*.srl
echo "make-certs.sh: CA and $nodes node certificates in $dir"
