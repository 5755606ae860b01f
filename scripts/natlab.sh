#!/usr/bin/env bash
# The NAT lab: network namespaces standing in for the internet, two home
# routers doing NAT, and a machine behind each, so relay and hole-punching
# tests run real daemons behind real (nftables) NAT on one machine. Traffic
# never leaves the namespaces.
#
#   natlab.sh up PREFIX [cone|symmetric]   build the lab (namespaces PREFIX-*)
#   natlab.sh down PREFIX                  remove every namespace of the lab
#   natlab.sh exec PREFIX NODE CMD...      run CMD in NODE's namespace
#   natlab.sh move PREFIX a|b              move a machine behind the other
#                                          router (a laptop changing networks)
#   natlab.sh check                        exit 0 if a lab can be built here,
#                                          else print why not and exit 77
#
# NODE is one of:
#   inet  the "internet": a bridge at 198.18.0.1/24, where the relay runs
#   r1    home router 1: wan 198.18.0.2, lan 10.1.0.1/24
#   r2    home router 2: wan 198.18.0.3, lan 10.2.0.1/24
#   a     a machine behind r1 at 10.1.0.2
#   b     a machine behind r2 at 10.2.0.2
#
# `move` unplugs the machine from its router and plugs it into the other
# one, on a LAN of its own there: a moves to 10.3.0.2 behind r2 (public
# address 198.18.0.3), b to 10.4.0.2 behind r1 (198.18.0.2). Processes in
# the machine's namespace keep running; their connections break.
#
# Both routers masquerade what leaves their wan and drop unsolicited inbound
# packets (`ct state new drop`, before conntrack confirms them, so a stray
# inbound packet never claims a port the router would later map an outgoing
# connection to). `cone` (the default) keeps source ports where it can, as a
# home router does, so hole punching can work; `symmetric` maps every
# connection to a random port (`masquerade random,fully-random`), where
# punching fails and traffic must stay relayed.
#
# Needs root, `ip` (iproute2) and `nft` (nftables); installs them from the
# distribution's packages when missing. PREFIX keeps concurrent labs apart
# (at most 10 characters, letters, digits and dashes).
set -euo pipefail

SKIP=77
NODES=(inet r1 r2 a b)

die() {
	echo "natlab: $*" >&2
	exit 1
}

skip() {
	echo "natlab: skipped: $*" >&2
	exit "$SKIP"
}

# Installs iproute2 / nftables if missing (Debian and Ubuntu only).
ensure_tools() {
	local missing=()
	command -v ip >/dev/null || missing+=(iproute2)
	command -v nft >/dev/null || missing+=(nftables)
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null || skip "missing ${missing[*]} and no apt-get to install it"
	echo "natlab: installing ${missing[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } ||
		skip "cannot install ${missing[*]}"
}

# Exits with SKIP and a reason unless namespaces and nftables NAT work here.
check() {
	[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces need root)"
	ensure_tools
	local probe="natlab-probe-$$"
	ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces"
	local ok=1
	ip netns exec "$probe" nft add table ip probe 2>/dev/null &&
		ip netns exec "$probe" nft add chain ip probe post \
			'{ type nat hook postrouting priority 100 ; }' 2>/dev/null || ok=0
	ip netns del "$probe"
	[ "$ok" -eq 1 ] || skip "nftables NAT is not available in this kernel"
}

ns() {
	echo "$1-$2"
}

valid_prefix() {
	[[ "$1" =~ ^[A-Za-z0-9-]{1,10}$ ]] || die "bad prefix '$1': 1-10 letters, digits or dashes"
}

# Router rules: masquerade out of wan; unsolicited inbound dropped.
router_rules() {
	local flags="$1"
	cat <<EOF
table ip natlab {
	chain pre {
		type filter hook prerouting priority -150; policy accept;
		iifname "wan" ct state new drop
	}
	chain post {
		type nat hook postrouting priority 100; policy accept;
		oifname "wan" masquerade $flags
	}
}
EOF
}

up() {
	local prefix="$1" kind="${2:-cone}"
	valid_prefix "$prefix"
	local flags
	case "$kind" in
	cone) flags="" ;;
	symmetric) flags="random,fully-random" ;;
	*) die "unknown NAT kind '$kind' (cone or symmetric)" ;;
	esac
	check
	for node in "${NODES[@]}"; do
		ip netns list | grep -qw "$(ns "$prefix" "$node")" &&
			die "namespace $(ns "$prefix" "$node") exists: run 'natlab.sh down $prefix' first"
	done
	for node in "${NODES[@]}"; do
		ip netns add "$(ns "$prefix" "$node")"
		ip -n "$(ns "$prefix" "$node")" link set lo up
	done
	local inet r1 r2 a b
	inet=$(ns "$prefix" inet) r1=$(ns "$prefix" r1) r2=$(ns "$prefix" r2)
	a=$(ns "$prefix" a) b=$(ns "$prefix" b)
	# The internet: one bridge the relay and both routers' wan ports are on.
	ip -n "$inet" link add br0 type bridge
	ip -n "$inet" addr add 198.18.0.1/24 dev br0
	ip -n "$inet" link set br0 up
	local i=2
	for router in "$r1" "$r2"; do
		ip -n "$router" link add wan type veth peer name "port$i" netns "$inet"
		ip -n "$inet" link set "port$i" master br0 up
		ip -n "$router" addr add "198.18.0.$i/24" dev wan
		ip -n "$router" link set wan up
		ip netns exec "$router" sysctl -q -w net.ipv4.ip_forward=1
		router_rules "$flags" | ip netns exec "$router" nft -f -
		i=$((i + 1))
	done
	# The homes: one machine behind each router.
	local n=1
	for pair in "$r1:$a" "$r2:$b"; do
		local router="${pair%%:*}" host="${pair##*:}"
		ip -n "$router" link add lan type veth peer name eth0 netns "$host"
		ip -n "$router" addr add "10.$n.0.1/24" dev lan
		ip -n "$router" link set lan up
		ip -n "$host" addr add "10.$n.0.2/24" dev eth0
		ip -n "$host" link set eth0 up
		ip -n "$host" route add default via "10.$n.0.1"
		n=$((n + 1))
	done
	echo "natlab: up ($kind NAT): relay 198.18.0.1 in $inet; a 10.1.0.2 behind $r1 (198.18.0.2); b 10.2.0.2 behind $r2 (198.18.0.3)"
}

down() {
	local prefix="$1"
	valid_prefix "$prefix"
	for node in "${NODES[@]}"; do
		local name
		name=$(ns "$prefix" "$node")
		if ip netns list | grep -qw "$name"; then
			# Stop whatever still runs inside, so the namespace really goes.
			local pids
			pids=$(ip netns pids "$name" 2>/dev/null || true)
			[ -n "$pids" ] && kill $pids 2>/dev/null || true
			ip netns del "$name" || true
		fi
	done
}

run_in() {
	local prefix="$1" node="$2"
	shift 2
	valid_prefix "$prefix"
	[[ " ${NODES[*]} " == *" $node "* ]] || die "unknown node '$node' (one of ${NODES[*]})"
	exec ip netns exec "$(ns "$prefix" "$node")" "$@"
}

# Moves machine NODE (a or b) behind the other router.
move() {
	local prefix="$1" node="$2"
	valid_prefix "$prefix"
	local router subnet
	case "$node" in
	a) router=r2 subnet=3 ;;
	b) router=r1 subnet=4 ;;
	*) die "only a or b can move (not '$node')" ;;
	esac
	local host router_ns
	host=$(ns "$prefix" "$node") router_ns=$(ns "$prefix" "$router")
	ip netns list | grep -qw "$host" || die "no lab '$prefix' (namespace $host missing)"
	# Deleting one end of the veth pair removes the old router's end too.
	ip -n "$host" link del eth0
	ip -n "$router_ns" link add "lan-$node" type veth peer name eth0 netns "$host"
	ip -n "$router_ns" addr add "10.$subnet.0.1/24" dev "lan-$node"
	ip -n "$router_ns" link set "lan-$node" up
	ip -n "$host" addr add "10.$subnet.0.2/24" dev eth0
	ip -n "$host" link set eth0 up
	ip -n "$host" route add default via "10.$subnet.0.1"
	echo "natlab: $node moved behind $router at 10.$subnet.0.2"
}

case "${1:-}" in
up) [ $# -ge 2 ] || die "usage: natlab.sh up PREFIX [cone|symmetric]"; up "$2" "${3:-cone}" ;;
down) [ $# -eq 2 ] || die "usage: natlab.sh down PREFIX"; down "$2" ;;
exec) [ $# -ge 4 ] || die "usage: natlab.sh exec PREFIX NODE CMD..."; run_in "$2" "$3" "${@:4}" ;;
move) [ $# -eq 3 ] || die "usage: natlab.sh move PREFIX a|b"; move "$2" "$3" ;;
check) check ;;
*) die "usage: natlab.sh up|down|exec|move|check ... (see the top of this script)" ;;
esac
