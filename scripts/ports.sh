# ports.sh - loopback ports for the servers the demo, the benchmarks and the shell tests start
# (sourced, not run).
#
#   source "$src/scripts/ports.sh"
#   port=$(free_port) || exit 1
#   wait_port "$port" "$pid" skiffd || exit 1

# free_port: prints a port no socket holds, below the ephemeral range (32768-) so that no
# outgoing connection can take it between here and the server's bind.
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM + i) % 12000))
        # Not just "nobody listens": a port any socket holds (even in TIME-WAIT) cannot be bound.
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    echo "${0##*/}: no free port found" >&2
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PID WHAT: waits (up to 10 s) until something accepts on PORT, failing at once
# if process PID (the server WHAT) exits first.
wait_port() {
    local i
    for i in $(seq 1 500); do
        port_open "$1" && return 0
        kill -0 "$2" 2>/dev/null || { echo "${0##*/}: $3 exited at start-up" >&2; return 1; }
        sleep 0.02
    done
    echo "${0##*/}: $3 did not start" >&2
    return 1
}
