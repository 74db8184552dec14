#!/usr/bin/env bash
# Makes the certificates for fresco's tls+tcp:// addresses with openssl:
# a CA, one certificate per service node (server and client use: services
# both listen and dial with it) and client certificates (the `fresco` command
# line, tools). EC P-256 keys, SHA-256 signatures. See deploy/certs.md.
#
#   scripts/gen-certs.sh [-o DIR] [--days N] [--node NAME[=SAN,SAN...]]... [--client NAME]...
#
#   -o DIR          output directory (default run/certs); the CA in it is
#                   reused when present, so nodes can be added later
#   --days N        validity of node and client certificates (default 825)
#   --node NAME     a service node; SANs are DNS names or IP addresses,
#                   e.g. --node agg1=agg1.example.org,10.0.0.5. NAME itself is
#                   always a DNS SAN.
#   --client NAME   a client-only certificate with CN=NAME
#
# With no --node/--client: a node "localhost" (localhost, 127.0.0.1, ::1 and
# this host's name) and a client "fresco-cli", enough for a single host.
# Writes ca.crt, ca.key, NAME.crt, NAME.key; keys are mode 0600.
set -euo pipefail

out=run/certs
days=825
ca_days=3650
nodes=()
clients=()

usage()
{
    sed -n '2,20s/^# \{0,1\}//p' "$0"
}

die()
{
    echo "gen-certs: $*" >&2
    exit 1
}

while (($# > 0)); do
    case "$1" in
    -o | --out)
        (($# >= 2)) || die "$1 needs a directory"
        out=$2
        shift 2
        ;;
    --out=*)
        out=${1#*=}
        shift
        ;;
    --days)
        (($# >= 2)) || die "--days needs a number"
        days=$2
        shift 2
        ;;
    --days=*)
        days=${1#*=}
        shift
        ;;
    --node | --server)
        (($# >= 2)) || die "$1 needs NAME[=SAN,...]"
        nodes+=("$2")
        shift 2
        ;;
    --node=* | --server=*)
        nodes+=("${1#*=}")
        shift
        ;;
    --client)
        (($# >= 2)) || die "--client needs a NAME"
        clients+=("$2")
        shift 2
        ;;
    --client=*)
        clients+=("${1#*=}")
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown argument '$1'"
        ;;
    esac
done

[[ "$days" =~ ^[1-9][0-9]*$ ]] || die "--days: not a positive number: '$days'"
command -v openssl >/dev/null || die "openssl is missing (scripts/install-deps.sh installs it)"

if ((${#nodes[@]} == 0 && ${#clients[@]} == 0)); then
    host=$(hostname 2>/dev/null || echo localhost)
    nodes=("localhost=127.0.0.1,::1,$host")
    clients=(fresco-cli)
fi

check_name()
{
    [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] ||
        die "'$1' is not usable as a certificate and file name"
}

umask 077
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

new_key()
{
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    chmod 600 "$1"
}

# ---- the CA ----
if [[ -f "$out/ca.crt" && -f "$out/ca.key" ]]; then
    echo "gen-certs: reusing the CA in $out/ca.crt"
else
    new_key "$out/ca.key"
    openssl req -new -x509 -sha256 -key "$out/ca.key" -out "$out/ca.crt" -days "$ca_days" \
        -subj "/O=fresco/CN=fresco CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
    chmod 644 "$out/ca.crt"
    echo "gen-certs: new CA $out/ca.crt"
fi

# sign NAME EXTFILE: NAME.key + NAME.crt signed by the CA
sign()
{
    local name=$1 ext=$2
    new_key "$out/$name.key"
    openssl req -new -sha256 -key "$out/$name.key" -subj "/O=fresco/CN=$name" \
        -out "$tmp/$name.csr"
    openssl x509 -req -sha256 -in "$tmp/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days "$days" -extfile "$ext" \
        -out "$out/$name.crt" 2>/dev/null
    chmod 644 "$out/$name.crt"
    openssl verify -CAfile "$out/ca.crt" "$out/$name.crt" >/dev/null ||
        die "$out/$name.crt does not verify against $out/ca.crt"
}

ip_re='^([0-9]{1,3}\.){3}[0-9]{1,3}$|:'

for spec in "${nodes[@]}"; do
    name=${spec%%=*}
    check_name "$name"
    sans="DNS:$name"
    if [[ "$spec" == *=* ]]; then
        IFS=, read -r -a extra <<<"${spec#*=}"
        for s in "${extra[@]}"; do
            [[ -n "$s" ]] || continue
            if [[ "$s" == DNS:* || "$s" == IP:* ]]; then
                sans+=",$s"
            elif [[ "$s" =~ $ip_re ]]; then
                sans+=",IP:$s"
            else
                sans+=",DNS:$s"
            fi
        done
    fi
    # Services listen and dial with the same certificate: both usages.
    cat >"$tmp/$name.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$sans
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
    sign "$name" "$tmp/$name.ext"
    echo "gen-certs: node $name ($sans): $out/$name.crt $out/$name.key"
done

for name in "${clients[@]}"; do
    check_name "$name"
    cat >"$tmp/$name.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
    sign "$name" "$tmp/$name.ext"
    echo "gen-certs: client $name: $out/$name.crt $out/$name.key"
done
